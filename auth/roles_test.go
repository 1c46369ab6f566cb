package auth

import (
	"maps"
	"testing"
)

func TestParseRoles(t *testing.T) {
	got, err := ParseRoles(" support-admins=admin, support = agent,,authentik Admins=admin ")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"support-admins": "admin", "support": "agent", "authentik Admins": "admin"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := ParseRoles(""); err != nil || len(got) != 0 {
		t.Errorf(`ParseRoles("") = %v, %v; want empty`, got, err)
	}
	if got, err := ParseRoles("cn=ops=admin"); err != nil || got["cn=ops"] != "admin" {
		t.Errorf("a group with '=': got %v, %v", got, err)
	}
	if got, err := ParseRoles("leads=lead"); err != nil || got["leads"] != RoleLead {
		t.Errorf("a lead group: got %v, %v", got, err)
	}
	for _, bad := range []string{"support", "support=owner", "support=Lead", "=admin", "support=Admin", "a=admin,a=agent"} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q): want an error", bad)
		}
	}
}

func TestRoleFor(t *testing.T) {
	roles := map[string]string{"support-admins": "admin", "support": "agent", "leads": "lead"}
	for _, tc := range []struct {
		groups []string
		role   string
		ok     bool
	}{
		{[]string{"support"}, RoleAgent, true},
		{[]string{"support", "support-admins"}, RoleAdmin, true},
		{[]string{"support-admins", "support"}, RoleAdmin, true},
		{[]string{"everyone", "support"}, RoleAgent, true},
		{[]string{"everyone"}, "", false},
		{[]string{"support", "leads"}, RoleLead, true},
		{[]string{"leads", "support"}, RoleLead, true},
		{[]string{"leads", "support-admins"}, RoleAdmin, true},
		{nil, "", false},
		{[]string{"Support"}, "", false}, // exact match
	} {
		role, ok := RoleFor(tc.groups, roles)
		if role != tc.role || ok != tc.ok {
			t.Errorf("RoleFor(%v) = %q, %v; want %q, %v", tc.groups, role, ok, tc.role, tc.ok)
		}
	}
	if role, ok := RoleFor([]string{DevAdminGroup}, map[string]string{DevAdminGroup: RoleAdmin}); !ok || role != RoleAdmin {
		t.Errorf("dev group: %q, %v", role, ok)
	}
}
