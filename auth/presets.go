package auth

import "sort"

// preset is what a proxy sends, from its own documentation (see
// shared/spec/sso.md).
type preset struct {
	mode Mode

	// header mode
	user, email, name, groups string
	groupSep                  string // separator of groups within one header line
	groupLines                bool   // groups may also come one header line per group

	// jwt mode
	assertion string
	// hints for the error naming a missing setting
	jwksHint, issuerHint, audienceHint string
}

var presets = map[string]preset{
	"oauth2-proxy": {
		mode:       ModeHeader,
		user:       "X-Forwarded-User",
		email:      "X-Forwarded-Email",
		name:       "X-Forwarded-Preferred-Username",
		groups:     "X-Forwarded-Groups",
		groupSep:   ",",
		groupLines: true,
	},
	"authelia": {
		mode:     ModeHeader,
		user:     "Remote-User",
		email:    "Remote-Email",
		name:     "Remote-Name",
		groups:   "Remote-Groups",
		groupSep: ",",
	},
	"authentik": {
		mode:     ModeHeader,
		user:     "X-authentik-username",
		email:    "X-authentik-email",
		name:     "X-authentik-name",
		groups:   "X-authentik-groups",
		groupSep: "|",
	},
	"pomerium": {
		mode:         ModeJWT,
		assertion:    "X-Pomerium-Jwt-Assertion",
		jwksHint:     "https://<authenticate host>/.well-known/pomerium/jwks.json",
		issuerHint:   "the route's domain, as in the assertion's iss claim",
		audienceHint: "the route's domain, as in the assertion's aud claim",
	},
	"cloudflare": {
		mode:         ModeJWT,
		assertion:    "Cf-Access-Jwt-Assertion",
		jwksHint:     "https://<team>.cloudflareaccess.com/cdn-cgi/access/certs",
		issuerHint:   "https://<team>.cloudflareaccess.com",
		audienceHint: "the application's Audience (AUD) tag",
	},
	"oidc": {
		mode:         ModeJWT,
		assertion:    "Authorization",
		jwksHint:     "the jwks_uri of the provider's /.well-known/openid-configuration",
		issuerHint:   "the provider's issuer URL",
		audienceHint: "the OAuth client id oauth2-proxy uses",
	},
}

// presetNames lists the presets of a mode ("" for all), for error messages.
func presetNames(m Mode) []string {
	var names []string
	for n, p := range presets {
		if m == "" || p.mode == m {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// EffectiveMode is the mode cfg runs in: Mode, else its preset's, else dev.
// New refuses the combinations that make this ambiguous.
func (c Config) EffectiveMode() Mode {
	if c.Mode != "" {
		return c.Mode
	}
	if p, ok := presets[c.Preset]; ok {
		return p.mode
	}
	return ModeDev
}
