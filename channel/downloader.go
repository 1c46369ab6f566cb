package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gabriel-vasile/mimetype"

	"sessiondesk/media"
	"sessiondesk/store"
)

// Downloader fetches clients' images and files at once: the provider's media
// URL does not live long. A failed download is retried with backoff and shown
// as failed after its last try; an agent can ask for another.
type Downloader struct {
	store   *store.Store
	media   *media.Store
	fetcher *media.Fetcher
	limits  media.Limits
	log     *slog.Logger
	now     func() time.Time
	// Tries is how many attempts a download gets before it is shown as failed.
	Tries int
	// Backoff is the wait after the first failure; it doubles after each.
	Backoff time.Duration
}

// NewDownloader returns a downloader into ms, with the fetcher's size cap and timeout.
func NewDownloader(st *store.Store, ms *media.Store, f *media.Fetcher, lim media.Limits, log *slog.Logger, now func() time.Time) *Downloader {
	if now == nil {
		now = time.Now
	}
	return &Downloader{store: st, media: ms, fetcher: f, limits: lim, log: log, now: now, Tries: 5, Backoff: 2 * time.Second}
}

// Run downloads what is pending whenever wake fires or a retry falls due.
func (d *Downloader) Run(ctx context.Context, wake <-chan struct{}) error {
	runWorker(ctx, wake, d.now, func(ctx context.Context) time.Time {
		d.Pass(ctx)
		next, err := d.store.NextDownloadAt(ctx)
		if err != nil {
			return time.Time{}
		}
		return next
	})
	return nil
}

// Pass tries every download that is due, one after the other.
func (d *Downloader) Pass(ctx context.Context) {
	due, err := d.store.PendingDownloads(ctx, d.now(), 20)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("list pending downloads", "err", err)
		}
		return
	}
	for _, p := range due {
		if ctx.Err() != nil {
			return
		}
		d.download(ctx, p)
	}
}

func (d *Downloader) download(ctx context.Context, p store.PendingDownload) {
	log := d.log.With("attachment", p.ID, "conversation", p.ConversationID)
	a, err := d.fetch(ctx, p)
	if err == nil {
		if err := d.store.DownloadDone(ctx, p.ID, a); err != nil {
			log.Error("record download", "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	// A link that is gone stays gone, and one the fetcher refuses (not https, a
	// private address) stays refused: no point trying again.
	var status *media.StatusError
	gone := errors.As(err, &status) && (status.StatusCode == http.StatusNotFound || status.StatusCode == http.StatusGone)
	_, refused := errors.AsType[*media.RefusedError](err)
	final := gone || refused || p.Attempts+1 >= d.Tries
	next := d.now().Add(d.Backoff << min(p.Attempts, 16))
	log.Warn("client media download failed", "attempt", p.Attempts+1, "final", final, "err", err)
	if err := d.store.DownloadFailed(ctx, p.ID, err.Error(), next, final); err != nil {
		log.Error("record failed download", "err", err)
	}
}

// fetch downloads and stores one client's media. Its type comes from its bytes:
// a JPEG or PNG gets a thumbnail and is shown inline; anything else is a file,
// only ever served as a download.
func (d *Downloader) fetch(ctx context.Context, p store.PendingDownload) (store.NewAttachment, error) {
	blob, _, err := d.fetcher.Fetch(ctx, p.URL, d.media)
	if err != nil {
		return store.NewAttachment{}, err
	}
	a := store.NewAttachment{Hash: blob.Hash, Size: blob.Size, MIME: mimetype.Detect(blob.Head).String()}
	if checked, refusal := media.CheckImage(blob.Head, blob.Size, d.limits); refusal == nil {
		thumb, tw, th, err := d.media.Thumbnail(blob.Hash, 320)
		if err != nil {
			return store.NewAttachment{}, fmt.Errorf("thumbnail: %w", err)
		}
		a.MIME, a.ThumbHash = checked.MIME, thumb.Hash
		a.Width, a.Height = media.Displayed(checked.Width, checked.Height, tw, th)
		if p.Name == "" {
			a.Name = "photo." + checked.Ext
		}
	}
	return a, nil
}
