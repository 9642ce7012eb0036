package broker

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// advertised is a listener whose Addr is the address to advertise: kfake
// puts its listener's address in metadata responses.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (l advertised) Addr() net.Addr { return l.addr }

// hostPort is a host:port as a net.Addr.
type hostPort string

func (hostPort) Network() string  { return "tcp" }
func (h hostPort) String() string { return string(h) }

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err == nil && host == "" {
		err = fmt.Errorf("no host")
	}
	if n, perr := strconv.Atoi(port); err == nil && (perr != nil || n < 1 || n > 65535) {
		err = fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if err != nil {
		return fmt.Errorf("--kafka-advertise %q: %v (give the host:port clients reach the broker at, e.g. pulse.example.com:9092)", s, err)
	}
	return nil
}

// checkReachable dials the advertised address: Pulse's own clients are
// sent to it as well, so it must lead back to this broker from here too.
func checkReachable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("--kafka-advertise %s is not reachable from Pulse itself (its own clients connect to the advertised address too; advertise a name that resolves here as well, or use --brokers with a Kafka that has separate listeners): %w", addr, err)
	}
	return c.Close()
}
