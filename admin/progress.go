package admin

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressBar draws the progress of one run on a terminal: a new bar for
// each phase, counting items or bytes; a negative total makes it a spinner
// with a rate. It is drawn in the CLI process whether the operation runs
// there or in the server.
type progressBar struct {
	w           io.Writer
	description string // the operation's: "gc", "verify"
	phase       string
	bar         *progressbar.ProgressBar
}

// update moves the bar to p.
func (b *progressBar) update(p Progress) {
	if b.bar == nil || p.Phase != b.phase {
		b.close()
		b.phase = p.Phase
		desc := b.description
		if p.Phase != "" && p.Phase != b.description {
			desc = fmt.Sprintf("%s %-9s", b.description, p.Phase)
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionClearOnFinish(),
		}
		if p.Bytes {
			opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true), progressbar.OptionSetPredictTime(true))
		} else {
			opts = append(opts, progressbar.OptionShowCount())
		}
		b.bar = progressbar.NewOptions64(p.Total, opts...)
	}
	if p.Total >= 0 {
		b.bar.ChangeMax64(p.Total)
	}
	b.bar.Set64(p.Done)
}

// close finishes the bar; it may be called more than once.
func (b *progressBar) close() {
	if b.bar != nil {
		b.bar.Finish()
		b.bar = nil
	}
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(int64(n))
	return n, err
}
