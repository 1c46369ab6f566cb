// Package auth says who the agent behind a request is.
//
// For now there is one way: the local dev agent, for a laptop, which only
// answers requests from this machine. SSO proxies come later behind the same
// Authenticator interface.
package auth

import (
	"errors"
	"net"
	"net/http"
)

// Identity is an authenticated agent as the login source describes it.
type Identity struct {
	Login string
	Name  string
	Role  string // agent or admin
}

// ErrUnauthenticated means the request carries no identity this server trusts.
var ErrUnauthenticated = errors.New("not signed in")

// Authenticator resolves the identity behind a request, on every request.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// Dev is the local dev login: every request from a loopback address is the
// local agent. The binary only listens on loopback while it is in use.
type Dev struct{}

// devIdentity is the local agent.
var devIdentity = Identity{Login: "local", Name: "Local agent", Role: "admin"}

// Authenticate implements Authenticator. It judges the connection's own address,
// never a forwarding header.
func (Dev) Authenticate(r *http.Request) (Identity, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return Identity{}, ErrUnauthenticated
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return Identity{}, ErrUnauthenticated
	}
	return devIdentity, nil
}
