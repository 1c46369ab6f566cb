package auth

import (
	"net"
	"net/http"
)

// DevAdminGroup is the one group of the local dev agent. It is not a group
// any proxy sends: map it to admin in dev mode only, e.g.
// roles[DevAdminGroup] = RoleAdmin.
const DevAdminGroup = "sessiondesk-dev-admin"

// Dev is the local dev login: every request from a loopback address is the
// local agent. The binary only listens on loopback while it is in use.
type Dev struct{}

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
	return Identity{
		Login:  "local",
		Name:   "Local agent",
		Groups: []string{DevAdminGroup},
	}, nil
}
