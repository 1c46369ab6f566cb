package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"sessiondesk/store"
)

// The figures read at scrape time: never cached, so a scrape shows the
// database as it is.
var (
	outboxDesc = prometheus.NewDesc(namespace+"_outbox_messages",
		"Business messages waiting in the outbox, by status: queued (to be handed to the provider, held for a retry "+
			"included) or unconfirmed (a try may have reached the provider; being looked up or left to an agent).",
		[]string{"status"}, nil)
	oldestDesc = prometheus.NewDesc(namespace+"_outbox_oldest_queued_age_seconds",
		"How long ago the oldest queued business message was accepted; 0 when none is queued.", nil, nil)
	pagesDesc = prometheus.NewDesc(namespace+"_live_pages",
		"Inbox pages open with a live connection (websocket) right now.", nil, nil)
	checkpointsDesc = prometheus.NewDesc(namespace+"_wal_checkpoints_total",
		"Background passes that copied the database's write-ahead log back into it, by result: done or failed "+
			"(the next one tries again).", []string{"result"}, nil)
	walPagesDesc = prometheus.NewDesc(namespace+"_wal_pages",
		"Pages (4 KB) in the database's write-ahead log at the last background checkpoint, by state: copied "+
			"(into the database too) or not_copied (a reader still needed their older version).", []string{"state"}, nil)
	commitsDesc = prometheus.NewDesc(namespace+"_store_commits_total",
		"Transactions the database's one writer committed. Under a burst, the write transactions waiting "+
			"for it share one commit: see "+namespace+"_store_writes_total.", nil, nil)
	writesDesc = prometheus.NewDesc(namespace+"_store_writes_total",
		"Write transactions committed (a client message, a send, a status change...). Divided by "+
			namespace+"_store_commits_total, how many shared a commit.", nil, nil)
	searchDesc = prometheus.NewDesc(namespace+"_search_index_behind_messages",
		"Messages the search index has not reached yet: a few while it follows, many while it is built "+
			"after an upgrade or a restore.", nil, nil)
)

// dbCollector reads the outbox depth and the writer's and the checkpoints'
// counts from the store, and the live pages from the hub, at each scrape.
type dbCollector struct {
	src   Sources
	pages atomic.Pointer[func() int]
}

// Describe sends the descriptions of the scrape-time metrics.
func (d *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{outboxDesc, oldestDesc, pagesDesc, searchDesc, checkpointsDesc, walPagesDesc,
		commitsDesc, writesDesc} {
		ch <- desc
	}
}

// Collect reads the figures. A failed read is reported as an invalid metric
// (promhttp logs it and serves the rest) and logged.
func (d *dbCollector) Collect(ch chan<- prometheus.Metric) {
	pages := 0
	if f := d.pages.Load(); f != nil && *f != nil {
		pages = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(pagesDesc, prometheus.GaugeValue, float64(pages))
	if d.src.Store == nil {
		return
	}
	cp := d.src.Store.Checkpoints()
	ch <- prometheus.MustNewConstMetric(checkpointsDesc, prometheus.CounterValue, float64(cp.Passes), "done")
	ch <- prometheus.MustNewConstMetric(checkpointsDesc, prometheus.CounterValue, float64(cp.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(walPagesDesc, prometheus.GaugeValue, float64(cp.WALCopied), "copied")
	ch <- prometheus.MustNewConstMetric(walPagesDesc, prometheus.GaugeValue, float64(cp.WALPages-cp.WALCopied), "not_copied")
	w := d.src.Store.Writes()
	ch <- prometheus.MustNewConstMetric(commitsDesc, prometheus.CounterValue, float64(w.Commits))
	ch <- prometheus.MustNewConstMetric(writesDesc, prometheus.CounterValue, float64(w.Writes))
	ctx, cancel := scrapeContext()
	defer cancel()
	var g store.Gauges
	err := d.src.Store.Read(ctx, func(r *store.Reader) error {
		var err error
		g, err = r.Gauges(ctx)
		return err
	})
	if err != nil {
		d.src.Log.Warn("metrics: reading the outbox failed", "err", err)
		ch <- prometheus.NewInvalidMetric(outboxDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(g.Queued), "queued")
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(g.Unconfirmed), "unconfirmed")
	age := 0.0
	if !g.OldestQueued.IsZero() {
		// A clock a little behind the acceptance time is no negative age.
		age = max(d.src.Now().Sub(g.OldestQueued).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(searchDesc, prometheus.GaugeValue, float64(g.SearchBehind))
}
