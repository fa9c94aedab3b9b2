// Command tcprelay is test code: `tcprelay LISTEN TARGET` accepts TCP
// connections on LISTEN and copies each, both ways, to TARGET. The fleet
// tests (package deploy) run it inside a verifier container's network
// namespace (docker run --network container:NAME) so that the test reaches
// a --dev-simulator verifier, which listens on loopback only; the product
// itself never relays.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tcprelay LISTEN TARGET")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go relay(c, os.Args[2])
	}
}

// relay copies c to and from a new connection to target; either side's
// end ends both.
func relay(c net.Conn, target string) {
	defer c.Close()
	t, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed
	}
	defer t.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(t, c); done <- struct{}{} }()
	go func() { io.Copy(c, t); done <- struct{}{} }()
	<-done
}
