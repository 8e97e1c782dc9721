// Package backup writes and restores berth backups: one zstd-compressed tar
// stream holding a point-in-time copy of a data directory.
//
// # The archive
//
// A backup is a tar stream compressed with zstd (one frame, with its
// checksum). Its entries are regular files, in this order:
//
//	header.json                 the Header: format and version, who wrote it and when, its id,
//	                            the id of its base when incremental, and the blob lists
//	meta.db                     meta.db as one read transaction saw it (bbolt Tx.WriteTo)
//	tls/<file>                  the files of DATA/tls there are (ca.crt, server.crt, ca.key,
//	                            server.key): the CA key cannot be made again
//	blobs/<alg>/<ab>/<hex>      the blobs this archive holds, named as in DATA
//
// Nothing else is allowed: a restore refuses any other name, absolute paths,
// "..", links, devices and directories, naming the entry (ParseEntryName and
// checkEntry hold the rules).
//
// # Consistency while serving
//
// The header's blob lists and meta.db come from the same read transaction
// (store.Snapshot), and those blobs are pinned against garbage collection
// before the transaction starts and until their files are copied. So every
// blob the copied meta.db records is in the backup chain, whatever pushes,
// deletes and collections run meanwhile.
//
// # Incremental backups and the chain
//
// Every header lists the whole set of blobs its snapshot records, split in
// two: Blobs, which the archive holds, and Inherited, which it does not
// because the backup it follows already had them. An incremental backup is
// made from the earlier backup's header alone: a blob goes into the new
// archive unless the earlier header lists it in either list. By induction
// every blob a header lists is held by that archive or by one of the
// archives before it in its chain, so the chain of a full backup followed by
// its incrementals, in order, restores any of its snapshots, and an
// incremental never needs more than the header of its base. The base's id in
// each header lets a restore check that its inputs are one chain in order.
//
// # Restore
//
// Restore fills a temporary directory beside DATA, hashing every blob as it
// is written; only when every input has been read and the result checked
// (meta.db pages, records against files) does the directory take DATA's
// place. On any failure the temporary directory is removed and DATA is as
// it was. With --force, what no backup holds (DATA/quarantine, an old
// DATA/tls the archive does not replace, files of the operator's) moves
// into the restored directory; an old DATA/tls that differs from the
// archive's is kept beside it as tls.replaced-<time>.
package backup
