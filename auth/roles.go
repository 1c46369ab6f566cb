package auth

import (
	"fmt"
	"strings"
)

// The roles a group can map to.
const (
	RoleAgent = "agent" // works conversations
	RoleLead  = "lead"  // works conversations and reads the reports
	RoleAdmin = "admin" // also manages settings and reads the audit log
)

// ReadsReports reports whether role may open the reports: leads and admins.
func ReadsReports(role string) bool { return role == RoleLead || role == RoleAdmin }

// ParseRoles reads SESSIONDESK_ROLES: comma-separated group=role pairs such
// as "support-admins=admin,support-leads=lead,support=agent", roles being
// agent, lead or admin.
// Spaces around names are ignored; a group name may contain spaces and "="
// (the role is what follows the last "="), not commas. Group names are
// matched exactly, case included. An empty string gives an empty map: then
// nobody maps to a role, which the caller should refuse outside dev mode.
func ParseRoles(s string) (map[string]string, error) {
	roles := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		i := strings.LastIndex(item, "=")
		if i < 0 {
			return nil, fmt.Errorf("SESSIONDESK_ROLES: %q is not group=role (e.g. support-admins=admin,support=agent)", item)
		}
		group, role := strings.TrimSpace(item[:i]), strings.TrimSpace(item[i+1:])
		if group == "" {
			return nil, fmt.Errorf("SESSIONDESK_ROLES: %q names no group", item)
		}
		if role != RoleAgent && role != RoleLead && role != RoleAdmin {
			return nil, fmt.Errorf("SESSIONDESK_ROLES: %q: the role must be %s, %s or %s", item, RoleAgent, RoleLead, RoleAdmin)
		}
		if prev, dup := roles[group]; dup && prev != role {
			return nil, fmt.Errorf("SESSIONDESK_ROLES: group %q is mapped to both %s and %s", group, prev, role)
		}
		roles[group] = role
	}
	return roles, nil
}

// RoleFor is the role of a user in groups: admin if any group maps to admin,
// else lead if any maps to lead, else agent if any maps to agent; ok is false
// when no group maps, and then the user gets no role at all (403), never a
// default one.
func RoleFor(groups []string, roles map[string]string) (role string, ok bool) {
	for _, g := range groups {
		switch roles[g] {
		case RoleAdmin:
			return RoleAdmin, true
		case RoleLead:
			role, ok = RoleLead, true
		case RoleAgent:
			if role == "" {
				role, ok = RoleAgent, true
			}
		}
	}
	return role, ok
}
