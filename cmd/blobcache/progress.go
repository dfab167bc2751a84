package main

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether f (standard input, output or error as run
// received it) is a terminal. Tests replace it to exercise the interactive
// paths.
var isTerminal = func(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// progress is a progress bar on standard error, or nothing (a nil
// *progress) when standard error is not a terminal or -q was given. Its
// methods are safe for concurrent use and do nothing on nil.
type progress struct {
	bar  *progressbar.ProgressBar
	done bool
}

// newProgress starts a bar counting to total, or a spinner with a count when
// total is negative (unknown). It returns nil when progress is not shown.
func (e *env) newProgress(total int64, what string) *progress {
	if e.quiet || total == 0 || !isTerminal(e.stderr) {
		return nil
	}
	w := e.stderr
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("obj"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		// No background redraws: the bar moves when work is done, and no
		// goroutine outlives the command.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	}
	if total < 0 {
		opts = append(opts, progressbar.OptionSpinnerType(14), progressbar.OptionSetElapsedTime(true))
	} else {
		opts = append(opts, progressbar.OptionSetPredictTime(true))
	}
	bar := progressbar.NewOptions64(total, opts...)
	bar.RenderBlank()
	return &progress{bar: bar}
}

// add counts n more objects done.
func (p *progress) add(n int) {
	if p != nil {
		p.bar.Add(n)
	}
}

// finish ends the bar: filled when ok, left where it stopped otherwise.
func (p *progress) finish(ok bool) {
	if p == nil || p.done {
		return
	}
	p.done = true
	if !ok {
		p.bar.Exit()
		return
	}
	if !p.bar.IsFinished() {
		p.bar.Finish()
	}
}
