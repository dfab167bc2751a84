package file

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blobcache/blobcache/driver"
)

// List implements [driver.Driver]. It walks only the directories that can
// hold names with the prefix, in order, and stops as soon as the page is
// full (one object later, to know whether there is a next page). The page
// token is the last name returned, encoded; a page resumes by descending
// along the token's path, skipping whole directories before it. Only
// regular files are listed, and only directories are descended into: a
// symbolic link, whatever it points to, is skipped.
func (d *Driver) List(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	page, err := d.list(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("file: list %q: %w", opts.Prefix, err)
	}
	return page, nil
}

func (d *Driver) list(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	limit := opts.PageSize
	if limit <= 0 || limit > driver.MaxListPageSize {
		limit = driver.MaxListPageSize
	}
	w := &walker{ctx: ctx, d: d, prefix: opts.Prefix, limit: limit, namesOnly: opts.NamesOnly}
	if opts.PageToken != "" {
		after, err := base64.RawURLEncoding.DecodeString(opts.PageToken)
		if err != nil || len(after) == 0 {
			return nil, fmt.Errorf("invalid page token %q", opts.PageToken)
		}
		w.after = string(after)
		// Continuation pages may reuse the sorted entries of large
		// directories that have not changed since an earlier page.
		w.cached = true
	}
	if comps, namePrefix, inCont, ok := startDir(opts.Prefix); ok {
		c, err := d.openChain(comps, false)
		switch {
		case err == nil:
			err = w.walk(c.last(), namePrefix, inCont)
			c.close()
			if err != nil {
				return nil, err
			}
		case !isAbsent(err):
			return nil, err
		}
		// A directory that is missing, or is a link or not a directory,
		// holds no objects.
	}
	page := &driver.ListPage{Objects: w.objs}
	if w.more {
		page.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(w.objs[len(w.objs)-1].Name))
	}
	return page, nil
}

// startDir returns the components of the deepest directory that holds
// every name starting with prefix, what all names in it start with, and
// whether it is a continuation. ok is false when no valid name can have the
// prefix.
func startDir(prefix string) (comps []string, namePrefix string, inCont, ok bool) {
	i := strings.LastIndexByte(prefix, '/')
	if i >= 0 {
		for seg := range strings.SplitSeq(prefix[:i], "/") {
			if seg == "" || seg == "." || seg == ".." {
				return nil, "", false, false
			}
			comps = appendSegment(comps, seg, kindDir)
		}
	}
	namePrefix = prefix[:i+1]
	partial := prefix[i+1:]
	// Every name going on with a partial segment of chunkLen bytes or more
	// is in the continuation of its first chunk.
	for len(partial) >= chunkLen {
		comps = append(comps, escape(partial[:chunkLen])+contSuffix)
		namePrefix += partial[:chunkLen]
		partial = partial[chunkLen:]
		inCont = true
	}
	return comps, namePrefix, inCont, true
}

// walker collects one page of a listing.
type walker struct {
	ctx    context.Context
	d      *Driver
	cached bool   // whether directory snapshots may be used
	prefix string // names must start with it
	after  string // names must be greater; "" for the first page
	limit  int
	// namesOnly: ListOptions.NamesOnly, sizes and times not wanted.
	namesOnly bool
	objs      []driver.Attributes
	more      bool // an object beyond the page exists
	done      bool // stop walking
	seen      int  // entries looked at, for context checks
}

// child is a directory entry that is part of the encoding.
type child struct {
	key     string // what it adds to its directory's name prefix
	comp    string // its file name
	kind    kind
	regular bool // a regular file, as the directory recorded it when read
}

// walk lists the objects in dir, whose names all start with namePrefix, in
// order, into w. It descends only into directories, never through a link.
func (w *walker) walk(dir *dir, namePrefix string, inCont bool) error {
	children, err := w.d.readChildren(dir, inCont, w.cached)
	if err != nil {
		return err
	}
	// Skip the entries before the page token and before the prefix.
	lb, all := keyBound(namePrefix, w.after)
	lb2, all2 := keyBound(namePrefix, w.prefix)
	if all || all2 {
		return nil
	}
	lb = max(lb, lb2)
	i, _ := slices.BinarySearchFunc(children, lb, func(c child, lb string) int { return strings.Compare(c.key, lb) })
	for _, c := range children[i:] {
		if w.seen++; w.seen%256 == 0 {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		full := namePrefix + c.key
		if c.kind == kindFile {
			switch {
			case strings.HasPrefix(full, w.prefix):
				if full > w.after {
					if err := w.emit(full, dir, c); err != nil {
						return err
					}
				}
			case full > w.prefix:
				w.done = true // past every name with the prefix
			}
		} else {
			// Every name below c starts with full.
			switch {
			case !strings.HasPrefix(full, w.prefix) && !strings.HasPrefix(w.prefix, full):
				w.done = full > w.prefix
			case full < w.after && !strings.HasPrefix(w.after, full):
				// Every name below c is before the page token.
			default:
				sub, err := dir.sub(c.comp)
				if err != nil {
					if isAbsent(err) {
						break // gone since read, or a link: no objects
					}
					return err
				}
				err = w.walk(sub, full, c.kind == kindCont)
				sub.close()
				if err != nil {
					return err
				}
			}
		}
		if w.done {
			return nil
		}
	}
	return nil
}

// keyBound returns a key such that, in a directory whose names all start
// with namePrefix, no entry with a smaller key holds a name that is both
// greater than or equal to s and starts with s (so entries before it can be
// skipped, both for s the page token and for s the prefix). all is true if
// no entry of the directory can hold such a name.
func keyBound(namePrefix, s string) (lb string, all bool) {
	if !strings.HasPrefix(s, namePrefix) {
		return "", s > namePrefix
	}
	rest := s[len(namePrefix):]
	lb = rest
	// The directory or continuation holding the names that go on from
	// rest has a key that is a prefix of rest.
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		lb = min(lb, rest[:j+1])
	}
	if len(rest) >= chunkLen {
		lb = min(lb, rest[:chunkLen])
	}
	return lb, false
}

// emit adds the object name, stored in the file c of dir, to the page, or
// notes that the page is full. Only regular files are objects. A listing
// of names only takes the directory's word that c is a regular file (its
// d_type, read with the directory; the snapshot of a large directory is
// dropped when the directory changes), with no stat of the file; a name
// replaced since by something else is then listed, and a Delete of it
// removes that thing itself, never what a link points to.
func (w *walker) emit(name string, dir *dir, c child) error {
	if driver.ValidateName(name) != nil {
		return nil // not ours
	}
	var st fileStat
	if w.namesOnly && c.regular {
		st.mode = 0 // regular, by the directory entry
	} else {
		var err error
		if st, err = dir.lstat(c.comp); err != nil {
			if isMissing(err) {
				return nil // deleted since the directory was read
			}
			return err
		}
	}
	if !st.regular() {
		return nil // not ours
	}
	if len(w.objs) == w.limit {
		w.more, w.done = true, true
		return nil
	}
	w.objs = append(w.objs, driver.Attributes{Name: name, Size: st.size, ModTime: st.mtime})
	return nil
}

// readChildren returns the entries of dir that are part of the encoding,
// sorted by key. With cached set, it may return a snapshot of a large
// directory from an earlier call (see dirCache).
func (d *Driver) readChildren(dir *dir, inCont, cached bool) ([]child, error) {
	before := time.Now()
	st, err := dir.stat()
	if err != nil {
		return nil, err
	}
	if cached {
		if children, ok := d.snaps.get(dir.path, st); ok {
			return children, nil
		}
	}
	entries, err := dir.entries()
	if err != nil {
		if isMissing(err) {
			return nil, nil // removed while read
		}
		return nil, err
	}
	children := make([]child, 0, len(entries))
	for _, e := range entries {
		if key, k, ok := parseComponent(e.name, inCont); ok {
			children = append(children, child{key: key, comp: e.name, kind: k, regular: e.regular})
		}
	}
	slices.SortFunc(children, func(a, b child) int { return strings.Compare(a.key, b.key) })
	d.snaps.put(dir.path, st, before, children)
	return children, nil
}

// Directory snapshots. Listing N objects in one directory a page at a time
// would read the whole directory for every page: O(N²/page size) work. So
// the sorted entries of large directories are kept for continuation pages,
// and reused as long as the directory's inode, size and modification time
// are unchanged. Every change of a directory's entries (including the
// temporary file of a write) sets its modification time to the current time
// of the kernel's clock; a snapshot is kept only if that time stamp was
// already older than any clock tick when the directory was read, so any later
// change gives a different time stamp. First pages always read directories
// afresh. (On network file systems, attribute caching and clock skew can make
// a continuation page miss objects created during the listing.)
const (
	snapMinEntries = 1024                   // smaller directories are read every time
	snapMax        = 4                      // snapshots kept per driver
	snapIdle       = time.Minute            // unused snapshots are dropped after this
	snapFineAge    = 100 * time.Millisecond // how old a fine time stamp must be
	snapCoarseAge  = 3 * time.Second        // the same for whole-second time stamps
)

// dirCache holds directory snapshots.
type dirCache struct {
	mu    sync.Mutex
	snaps []*dirSnap
}

type dirSnap struct {
	dir      string
	ino      uint64
	size     int64
	mtime    time.Time
	used     time.Time
	children []child
}

func (c *dirCache) get(dir string, st fileStat) ([]child, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.snaps {
		if s.dir == dir {
			if s.ino == st.ino && s.size == st.size && s.mtime.Equal(st.mtime) {
				s.used = time.Now()
				return s.children, true
			}
			return nil, false
		}
	}
	return nil, false
}

// put keeps children, read from dir after st was taken at time before, if
// the snapshot is large and trustworthy.
func (c *dirCache) put(dir string, st fileStat, before time.Time, children []child) {
	age := snapFineAge
	if st.mtime.Nanosecond() == 0 {
		age = snapCoarseAge
	}
	if len(children) < snapMinEntries || before.Sub(st.mtime) <= age {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snaps = slices.DeleteFunc(c.snaps, func(s *dirSnap) bool {
		return s.dir == dir || now.Sub(s.used) > snapIdle
	})
	if len(c.snaps) >= snapMax {
		oldest := 0
		for i, s := range c.snaps {
			if s.used.Before(c.snaps[oldest].used) {
				oldest = i
			}
		}
		c.snaps = slices.Delete(c.snaps, oldest, oldest+1)
	}
	c.snaps = append(c.snaps, &dirSnap{dir: dir, ino: st.ino, size: st.size, mtime: st.mtime, used: now, children: children})
}

// clear drops every snapshot.
func (c *dirCache) clear() {
	c.mu.Lock()
	c.snaps = nil
	c.mu.Unlock()
}
