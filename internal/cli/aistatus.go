package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// jobStreamer is what jobProgress needs of the coordinator client.
type jobStreamer interface {
	Stream(ctx context.Context, id string, onEvent func(coordinator.Event)) error
}

// progressWait bounds how long ai-status listens for a running job's text
// so far: the stream sends it first, at once.
const progressWait = 2 * time.Second

// jobProgress returns the last progress line ("epoch 3/20 train_loss=…")
// of a running training or data-processing job, read from the job's
// stream: the coordinator sends the text so far as its first event (behind
// the same payment gate as any output). "" when there is none yet.
func jobProgress(ctx context.Context, c jobStreamer, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, progressWait)
	defer cancel()
	var text string
	err := c.Stream(ctx, id, func(e coordinator.Event) {
		switch {
		case e.Type == coordinator.EventToken:
			text += e.Text
			cancel() // the text so far is all ai-status shows
		case e.Type == coordinator.EventStatus && e.Status == coordinator.StatusRequeued:
			text = ""
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return "", err
	}
	return lastProgress(text), nil
}

// lastProgress is the last complete, non-empty line of a kind job's
// stream.
func lastProgress(text string) string {
	lines := strings.Split(text, "\n")
	if !strings.HasSuffix(text, "\n") && len(lines) > 0 {
		lines = lines[:len(lines)-1] // a line still being written
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

// showsProgress reports whether ai-status asks the stream for v's
// progress: a kind job that runs now.
func showsProgress(v coordinator.JobView) bool {
	return jobkind.IsKindModel(v.Model) && (v.Status == store.StatusRunning || v.Status == store.StatusDispatched)
}
