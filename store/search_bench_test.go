package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sessiondesk/clock"
	"sessiondesk/session"
)

// The search benchmark runs over a generated database of
// SESSIONDESK_BENCH_SEARCH_SIZE messages (skipped when unset, so go test stays
// fast):
//
//	SESSIONDESK_BENCH_SEARCH_SIZE=1000000 go test ./store -run '^$' -bench BenchmarkSearch -benchtime 400x
//
// The database is generated once through the store's own calls (client
// messages and agents' replies, through Store.Batch) and kept in the
// system's temporary folder, named by its size, for the next runs.

// benchSearchSize reads the database size from the environment, or skips.
func benchSearchSize(b *testing.B) int {
	v := os.Getenv("SESSIONDESK_BENCH_SEARCH_SIZE")
	if v == "" {
		b.Skip("set SESSIONDESK_BENCH_SEARCH_SIZE (messages, e.g. 1000000) to run the search benchmark")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1000 {
		b.Fatalf("SESSIONDESK_BENCH_SEARCH_SIZE=%q: want a number of messages, at least 1000", v)
	}
	return n
}

// benchMessagesPerContact sets the number of conversations: size / 50.
const benchMessagesPerContact = 50

// benchPhone is the number of the i-th generated contact.
func benchPhone(i int) string { return fmt.Sprintf("+37529%07d", 1000000+i*7) }

// benchVocabulary is the generated text's words, the most frequent first:
// support talk in English, Russian and French, then a long tail of made-up
// words (names, product codes) so the index has a realistic number of terms.
func benchVocabulary(rng *rand.Rand) []string {
	words := strings.Fields(`the I you to and a is my order it please for of not yes no hello thanks
		can when where what ok delivery today tomorrow status payment address number card help
		спасибо здравствуйте заказ доставка когда где оплата адрес номер карта помощь сегодня
		завтра статус курьер возврат товар magasin livraison commande reçu adresse numéro très
		déjà problème café été réponse refund courier parcel package tracking invoice receipt
		price discount cancel change phone email shipped arrived broken wrong size colour
		отмена изменить телефон посылка трек счёт цена скидка размер цвет сломан пришёл`)
	syll := []string{"ka", "lo", "mi", "ren", "to", "vi", "sha", "po", "dor", "el", "an", "ti"}
	cyr := []string{"ка", "ло", "ми", "рен", "то", "ви", "ша", "по", "дор", "ел", "ан", "ти"}
	for i := 0; i < 20000; i++ {
		set := syll
		if i%3 == 0 {
			set = cyr
		}
		var w strings.Builder
		for n := 2 + rng.IntN(3); n > 0; n-- {
			w.WriteString(set[rng.IntN(len(set))])
		}
		if i%10 == 0 {
			w.WriteString(strconv.Itoa(rng.IntN(10000)))
		}
		words = append(words, w.String())
	}
	return words
}

// benchSearchDB returns the path of a database of size messages, generating
// it on first use.
func benchSearchDB(b *testing.B, size int) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sessiondesk-bench-search-v1-%d.db", size))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("generating %d messages into %s (once)", size, path)
	start := time.Now()
	tmp := path + ".part"
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
		_ = os.Remove(p)
	}
	if err := generateSearchDB(tmp, size); err != nil {
		b.Fatalf("generate: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated in %s", time.Since(start).Round(time.Second))
	return path
}

func generateSearchDB(path string, size int) error {
	ctx := context.Background()
	clk := clock.NewManual(time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC))
	s, err := Open(ctx, path, Options{Rules: session.Defaults(), Now: clk.Now})
	if err != nil {
		return err
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := benchVocabulary(rng)
	zipf := rand.NewZipf(rng, 1.07, 2, uint64(len(vocab)-1))
	text := func() string {
		n := 3 + rng.IntN(15)
		w := make([]string, n)
		for i := range w {
			w[i] = vocab[zipf.Uint64()]
		}
		return strings.Join(w, " ")
	}
	contacts := max(size/benchMessagesPerContact, 1)
	convOf := make(map[int]int64, contacts)
	const batch = 2000
	for done := 0; done < size; {
		err := s.Batch(ctx, func(st *Store) error {
			for i := 0; i < batch && done < size; i++ {
				clk.Add(30 * time.Second)
				c := rng.IntN(contacts)
				r, err := st.ReceiveClientMessage(ctx, ClientMessage{Phone: benchPhone(c),
					Name: fmt.Sprintf("%s %d", vocab[200+c%1000], c), Kind: session.Text, Text: text()})
				if err != nil {
					return err
				}
				convOf[c] = r.Message.ConversationID
				done++
				if rng.IntN(2) == 0 && done < size {
					if _, err := st.AcceptBusinessMessages(ctx, BusinessSend{ConversationID: convOf[c],
						Parts: []session.Part{{Kind: session.Text, Text: text()}}, ConfirmNewSession: true}); err != nil {
						return err
					}
					done++
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("after %d messages: %w", done, err)
		}
	}
	return nil
}

// BenchmarkSearch measures typical searches over the generated database and
// reports each one's median and 99th percentile latency (p50-ms, p99-ms).
func BenchmarkSearch(b *testing.B) {
	size := benchSearchSize(b)
	path := benchSearchDB(b, size)
	ctx := context.Background()
	s, err := Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.IndexSearch(ctx); err != nil { // the index of a new file is built on first open
		b.Fatal(err)
	}
	// A client's name, as generateSearchDB gives them: name words also occur
	// in messages, so this search reads the most (contacts, then messages for each).
	name := benchVocabulary(rand.New(rand.NewPCG(1, 2)))[200+10]
	for _, tc := range []struct{ name, q string }{
		{"name", name},
		{"word", "delivery"},       // a common word (in about 1 message of 20)
		{"prefix", "deli"},         // what is typed before the word is complete
		{"two-words", "parcel tr"}, // two words, the last one unfinished
		{"phone", "+375 29 100-00-70"},
		{"phone-tail", "000070"},
		{"cyrillic", "достав"},
		{"frequent", "the"}, // in about half the messages: the scan bound holds
		{"nothing", "zzqxv"},
	} {
		q, err := ParseSearch(tc.q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			var found int
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t := time.Now()
				err := s.Read(ctx, func(r *Reader) error {
					res, err := r.Search(ctx, q, 20)
					found = len(res)
					return err
				})
				lat = append(lat, time.Since(t))
				if err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(found), "results")
		})
	}
}

// BenchmarkSearchBackfill measures migration 00012 on a database of the
// benchmark's size that did not have it: building both indexes from the
// stored messages and contacts (the messages' in its own file, 00046). It runs once (b.N is ignored).
func BenchmarkSearchBackfill(b *testing.B) {
	size := benchSearchSize(b)
	src := benchSearchDB(b, size)
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "backfill.db")
	if err := copyFile(src, path); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on&_journal_mode=WAL")
	if err != nil {
		b.Fatal(err)
	}
	p, err := migrationProvider(db)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 11); err != nil {
		b.Fatal(err)
	}
	db.Close()
	b.ResetTimer()
	start := time.Now()
	s, err := Open(ctx, path, Options{Rules: session.Defaults()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.IndexSearch(ctx); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	for b.Loop() {
	}
	b.ReportMetric(took.Seconds(), "s/backfill")
	s.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
