package store

import "sync/atomic"

// generations counts the commits of the one writer, so that a reader can tell
// exactly which commits its snapshot holds and reuse what an earlier reader
// computed from the same ones (see Reader.exactGeneration).
//
// started is raised just before a COMMIT runs, finished just after it returns
// (whether it succeeded or not). A snapshot that began after finished read f
// holds every commit up to f; one whose started reads s once it is open holds
// none after s. When the two readings are equal, the snapshot holds exactly
// the commits 1..f: no commit was in flight around its start.
type generations struct {
	started, finished atomic.Uint64
}

// committing is called by the writer just before it runs COMMIT.
func (g *generations) committing() { g.started.Add(1) }

// committed is called by the writer once COMMIT returned, whatever it returned:
// a failed commit made nothing visible, so counting it only costs a reuse.
func (g *generations) committed() { g.finished.Store(g.started.Load()) }
