package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// MinMetricsToken is the shortest bearer token accepted for /metrics: it is
// all that stands between the network and the figures.
const MinMetricsToken = 16

// DefaultMetricsAllow is who may read /metrics when nothing is configured:
// this machine only.
const DefaultMetricsAllow = "127.0.0.0/8,::1/128"

// ParseMetricsAllow reads a comma-separated list of CIDRs or single
// addresses ("10.0.0.0/8, 192.168.1.7"); "none" is the empty list (the token
// only).
func ParseMetricsAllow(list string) ([]netip.Prefix, error) {
	list = strings.TrimSpace(list)
	if strings.EqualFold(list, "none") {
		return nil, nil
	}
	var out []netip.Prefix
	for part := range strings.SplitSeq(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("SESSIONDESK_METRICS_ALLOW: %q is neither a CIDR (10.0.0.0/8) nor an address", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("SESSIONDESK_METRICS_ALLOW is empty: list CIDRs such as %s, or say none to require the token",
			DefaultMetricsAllow)
	}
	return out, nil
}

// checkMetrics reads who may scrape /metrics.
func (c *Config) checkMetrics(allow string) error {
	var err error
	if c.MetricsAllow, err = ParseMetricsAllow(allow); err != nil {
		return err
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < MinMetricsToken {
		return fmt.Errorf("SESSIONDESK_METRICS_TOKEN must be at least %d characters", MinMetricsToken)
	}
	return nil
}
