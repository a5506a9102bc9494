package hostnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// stateFile is the state file: everything Fulcrum created or changed on
// the host, with the previous values of what it changed.
type stateFile struct {
	Version int     `json:"version"`
	Items   []*item `json:"items"`
}

// loadState reads the state file; a missing file lists nothing.
func loadState(path string) ([]*item, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hostnet state file: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("hostnet state file %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("hostnet state file %s: version %d, this Fulcrum reads %d", path, st.Version, stateVersion)
	}
	var out []*item
	for _, it := range st.Items {
		if it == nil || rank(it.Kind) < 0 || (it.Kind == kindRoute && it.Route == nil) ||
			(it.Kind == kindRule && it.Rule == nil) || (it.Kind == kindChain && it.Chain == nil) {
			return nil, fmt.Errorf("hostnet state file %s: an item is incomplete", path)
		}
		out = append(out, it)
	}
	return out, nil
}

// saveState writes the state file atomically with mode 0600, or removes
// it when nothing is owned.
func saveState(path string, items []*item) error {
	if path == "" {
		return nil
	}
	if len(items) == 0 {
		err := os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Items: items}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeAtomic(path, string(b)+"\n", 0o600)
}
