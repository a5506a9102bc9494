// Command backend is the real server of the layer-4 benchmark: a small,
// fast TCP server. On each connection it reads requests, one per line,
// each the decimal size of the answer wanted ("64\n", "1048576\n"), and
// writes that many bytes back, until the client closes.
//
//	backend -listen 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// payload is what answers are cut from.
var payload = make([]byte, 1<<20)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "comma-separated addresses to listen on")
	flag.Parse()
	for _, addr := range strings.Split(*listen, ",") {
		ln, err := net.Listen("tcp", strings.TrimSpace(addr))
		if err != nil {
			log.Fatalf("backend: %v", err)
		}
		go serve(ln)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Printf("backend: accept: %v", err)
			return
		}
		go handle(c)
	}
}

func handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(line)))
		if err != nil || n < 0 || n > 1<<30 {
			return
		}
		for n > 0 {
			k := min(n, len(payload))
			if _, err := c.Write(payload[:k]); err != nil {
				return
			}
			n -= k
		}
	}
}
