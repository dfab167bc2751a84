package conformance

// The clauses of the contract the suite checks, each quoting where it is
// written: package driver's doc comments for the driver section, package
// cache's and cull's for the cache section. Every case names one (see
// driverCase.clause) and every failure message of the case ends with it; a
// message may cite a second one it checks in passing.
const (
	clauseReadYourWrite  = `contract (Driver): "Data written under a name is returned unchanged by Read"`
	clauseReadAttrs      = `contract (Driver.Read): "the attributes are those of the object whose bytes are returned: Name is the name read, Size the object's whole size (not the range's), ModTime set as Attributes describes"`
	clauseOverwrite      = `contract (Driver.Write): "stores the bytes read from body under name, replacing any object that exists unless opts.IfAbsent is set"`
	clauseReadRange      = `contract (Driver.Read): "length bytes of the object starting at offset, or all bytes from offset when length is negative ... A range reaching past the end returns the bytes up to the end"`
	clauseReadOwned      = `contract (Driver.Read): "The returned bytes belong to the caller: the driver neither keeps nor changes them once Read returns"`
	clauseEncoding       = `contract (WriteOptions.ContentEncoding): "It never changes the bytes the driver stores or returns"`
	clauseBodyError      = `contract (Driver.Write): "If body returns an error, nothing is stored and that error is returned"`
	clauseAtomicWrite    = `contract (Driver.Write): "The write is atomic: readers see either the old object or the whole new one, never a part"`
	clauseNotFound       = `contract (Driver.Read): "It returns ErrNotFound when no object exists"`
	clauseDelete         = `contract (Driver.Delete): "removes the object. Deleting an absent object is not an error and returns nil"`
	clauseListPrefix     = `contract (ListOptions.Prefix, ListPage.Objects): "names that start with Prefix, compared byte for byte ... in strictly increasing byte-wise order of Name. Each has Name, Size and ModTime set"`
	clauseNamesOnly      = `contract (ListOptions.NamesOnly): "a driver may then leave Size and ModTime zero ... The names, their order and the pages are the same either way"`
	clausePagination     = `contract (ListOptions, ListPage): "PageToken continues a listing from the NextPageToken of the previous page ... PageSize is the most objects to return, 1 to MaxListPageSize; zero means MaxListPageSize ... NextPageToken is empty on the last page"`
	clausePageToken      = `contract (ListOptions.PageToken): "the page starts strictly after the last name the previous page returned, whatever was written or deleted since ... an object present from the first page until a page returns it is listed exactly once"`
	clauseModTime        = `contract (Attributes.ModTime): "Read and List always set it; it is never the zero time. An overwrite never makes it earlier, and an overwrite made once the store's granularity has passed since the previous write makes it later"`
	clauseNames          = `contract (Driver, NameValidator): "Names passed to a driver always satisfy ValidateName ... every name ValidateName accepts must round-trip exactly"`
	clauseNamesAsGiven   = `contract (NameValidator): "ValidateName returns an error wrapping ErrInvalidName ... for every name the driver would not store, list and delete exactly as given; the driver's methods refuse such names with the same error"`
	clauseIfAbsent       = `contract (WriteOptions.IfAbsent): "it succeeds only if no object exists under the name, and otherwise fails with ErrPreconditionFailed and leaves the existing object untouched"`
	clauseIfAbsentRace   = `contract (WriteOptions.IfAbsent): "The check and the write must be one atomic step, also across processes sharing the store: of many concurrent IfAbsent writers to one name, exactly one succeeds"`
	clauseReplace        = `contract (Replacer.Replace): "stores body under name only if the object's current ETag equals etag ... ErrPreconditionFailed when the object changed and ErrNotFound when it no longer exists; in both cases nothing is written"`
	clauseReplaceOptions = `contract (Replacer.Replace): "a body that returns an error stores nothing and that error is returned ... ContentEncoding means what it means for Write. IfAbsent has no meaning here ... a driver ignores it"`
	clauseReplaceRace    = `contract (Replacer.Replace): "only if the object's current ETag equals etag (as returned by Read), atomically, also across processes"`
	clauseBatchDelete    = `contract (BatchDeleter.DeleteBatch): "removes the named objects ... Names with no object are not an error"`
	clauseReadDelete     = `contract (ReadDeleter.ReadDelete): "removes the object and returns its first length bytes (all of them when it is shorter ...) and its attributes, as Read(ctx, name, 0, length) returns them ... It returns ErrNotFound, and removes nothing, when no object exists"`
	clauseReadDeleteRace = `contract (ReadDeleter.ReadDelete): "of the object removed: no Write, Replace or Delete of name, by any process sharing the store, takes effect between the read and the removal"`
	clauseErrors         = `contract (package driver, Errors): "An error of a kind the contract names wraps that kind ... The message starts with the driver's package name, then the operation and the name, quoted as %q quotes it"`
	clauseCanceled       = `contract (Driver, Errors): "A cancelled context makes the call return an error satisfying errors.Is(err, ctx.Err()) promptly"`
	clauseCancelWrite    = `contract (Driver.Write, Errors): "readers see either the old object or the whole new one, never a part" when the context ends during the write, whose error satisfies errors.Is(err, ctx.Err())`
	clauseClose          = `contract (Driver.Close): "the stored objects stay. After Close, every other method (those of the optional interfaces too) returns an error wrapping ErrClosed and touches nothing"`
	clauseListChurn      = `contract (Driver, ListOptions.PageToken): "Implementations must be safe for concurrent use by multiple goroutines" and listings keep start-after semantics while other goroutines write and delete`

	clauseCacheAdd  = `cache (Cache.Add): "The check and the write are one atomic step (a create-if-absent write ...)", over a driver whose WriteOptions.IfAbsent is atomic "also across processes sharing the store"`
	clauseIncr      = `cache (Cache.Incr): "The update is atomic across processes where the driver implements Replacer"`
	clauseLock      = `cache (Lock): "a lease on a name, held by at most one caller across every process sharing the store ... Only the holder can extend or release it"`
	clauseFleetFill = `cache (GetOrSet with a fill lease): "one caller in the whole fleet fills a missing key ... Every other Cache that misses the key meanwhile ... waits ... until the value is there (which it returns)"`
	clauseStale     = `cache (WithStaleGrace): a stale entry is "a miss for Get, Has, Touch, Incr and Add as before ... but GetOrSet returns its value at once and refreshes it in the background: one refresh per key at a time in a Cache, one in the whole fleet with a fill lease"`
	clauseIncrement = `cache (Increment): "a key with no live entry is created holding initial+delta ... Each caller still gets its own result ... (distinct results, none lost, none doubled) ... Across processes the update is atomic where the driver implements Replacer"`
	clauseClear     = `cache: "Clear deletes every entry under the cache's location", over a driver whose page tokens keep ListOptions.PageToken`
	clauseOldest    = `cull.Oldest: "choosing those with the oldest modification time first", over a driver whose ModTime keeps Attributes.ModTime`
)
