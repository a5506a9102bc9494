package kempapi

import (
	"testing"
)

// tmplGoldenStep is one command of the template scenario; file names its
// golden answer.
type tmplGoldenStep struct {
	file   string
	cmd    string
	params [][2]string
	body   string
	status int
}

// tmplGoldenScenario imports a template, applies it, exports the service
// and deletes the template, with the answers of two refusals.
var tmplGoldenScenario = []tmplGoldenStep{
	{"listtemplates", "listtemplates", nil, "", 200},
	{"uploadtemplate", "uploadtemplate", nil, myTemplate, 200},
	{"uploadtemplate-lmtmpl", "uploadtemplate", nil, "\x00\x01binary", 422},
	{"addvs-template", "addvs", [][2]string{{"vs", "192.0.2.50"}, {"port", "8080"}, {"template", "my-web"}, {"listenport", "8080"},
		{"servers", "10.0.0.11 10.0.0.12"}}, "", 200},
	{"addvs-template-error", "addvs", [][2]string{{"vs", "192.0.2.51"}, {"template", "lync2013-reverse-proxy"}}, "", 422},
	{"exportvstmplt", "exportvstmplt", [][2]string{{"vs", "192.0.2.50"}, {"port", "8080"}, {"prot", "tcp"}}, "", 200},
	{"deltemplate", "deltemplate", [][2]string{{"name", "my-web"}}, "", 200},
}

func tmplGoldenAnswers(t *testing.T, v2 bool) map[string][]byte {
	e := newEnv(t, envOpts{})
	out := map[string][]byte{}
	for _, s := range tmplGoldenScenario {
		name := s.file + ".xml"
		if v2 {
			name = s.file + ".json"
		}
		var body []byte
		if s.body != "" {
			body = []byte(s.body)
		}
		a := e.scenarioCall(v2, s.cmd, s.params, body, "vs")
		if a.status != s.status {
			t.Fatalf("%s: %d, want %d: %s", name, a.status, s.status, a.body)
		}
		out[name] = a.body
	}
	return out
}

// TestTemplatesGolden keeps every answer of the template scenario, both
// versions, in testdata/golden/templates, and holds each <template> of
// listtemplates to testdata/shapes/listtemplates.txt.
func TestTemplatesGolden(t *testing.T) {
	got := tmplGoldenAnswers(t, false)
	for k, v := range tmplGoldenAnswers(t, true) {
		got[k] = v
	}
	for name, body := range got {
		matchGolden(t, "templates", name, "TemplatesGolden", body)
	}

	facts := readShape(t, "listtemplates.txt")
	x, err := parseXML(got["listtemplates.xml"])
	if err != nil {
		t.Fatal(err)
	}
	items := x.at("Success", "Data").kids
	j, err := parseJSON(got["listtemplates.json"])
	if err != nil {
		t.Fatal(err)
	}
	arr := j.get("template")
	if len(items) == 0 || arr.kind != 'a' || len(arr.arr) != len(items) {
		t.Fatalf("listtemplates: %d <template>, JSON %s", len(items), got["listtemplates.json"])
	}
	for i, it := range items {
		if it.name != "template" {
			t.Fatalf("<%s> in Data, want <template>", it.name)
		}
		o := arr.arr[i]
		for k, fact := range facts {
			if k >= len(it.kids) || it.kids[k].name != fact.name || shapeXMLKind(it.kids[k]) != fact.xmlKind {
				t.Errorf("template %d: XML element %d is %q (%s), want %s (%s)", i, k, nameAt(it.kids, k), shapeXMLKind(it.kids[min(k, len(it.kids)-1)]), fact.name, fact.xmlKind)
			}
			if k >= len(o.keys) || o.keys[k] != fact.name || jsonKind(o.obj[fact.name]) != fact.jKind {
				t.Errorf("template %d: JSON key %d is not %s of kind %s", i, k, fact.name, fact.jKind)
			}
		}
	}
}
