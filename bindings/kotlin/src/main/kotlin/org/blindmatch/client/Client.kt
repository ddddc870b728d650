// A ready client over grpc-java: fetch the manifest, verify it, bring the
// table up to date, submit, retry.
//
// It drives the core (Manifest, History, TableDownload, DeltaDownload,
// Table, Backoff: the same in every binding) as the Rust client does: the
// manifest is verified against the pinned operator key, then the
// organisations' quorum and the transparency log if the app pins them, then
// the history (no rollback, no equivocation); the table comes from the
// cache, a delta from the table held, or a download that checks every chunk
// and resumes where a broken stream stopped (across restarts too, with a
// cache directory); every submission is retried unchanged, under its id, as
// the core's Backoff allows, so the server stores it once. The stubs are
// the jar's own (blindmatch.v1), generated from the service's .proto.
package org.blindmatch.client

import blindmatch.v1.Blindmatch.DownloadDeltaRequest
import blindmatch.v1.Blindmatch.DownloadTableRequest
import blindmatch.v1.Blindmatch.GetManifestRequest
import blindmatch.v1.Blindmatch.SubmitRequest
import blindmatch.v1.TableServiceGrpc
import blindmatch.v1.VoucherServiceGrpc
import com.google.protobuf.ByteString
import io.grpc.ManagedChannel
import io.grpc.ManagedChannelBuilder
import io.grpc.Metadata
import io.grpc.StatusRuntimeException
import java.io.File
import java.io.FileNotFoundException
import java.io.FileOutputStream
import java.io.RandomAccessFile
import java.nio.file.Files
import java.nio.file.StandardCopyOption
import java.nio.file.attribute.PosixFilePermissions
import java.util.concurrent.TimeUnit
import org.blindmatch.Account
import org.blindmatch.Backoff
import org.blindmatch.BlindmatchException
import org.blindmatch.CoSignature
import org.blindmatch.DeltaDownload
import org.blindmatch.History
import org.blindmatch.ItemToCheck
import org.blindmatch.LogPolicy
import org.blindmatch.Manifest
import org.blindmatch.OperatorKey
import org.blindmatch.Quorum
import org.blindmatch.Submission
import org.blindmatch.Table
import org.blindmatch.TableDownload
import org.blindmatch.Upload

/** What [Client.refresh] did: the version now held, and how it came. */
data class Refreshed(
    /** The table version now held. */
    val version: Long,
    /** How: [HELD] (already up to date), [CACHED], [DELTA] or [DOWNLOAD]. */
    val how: String,
) {
    companion object {
        const val HELD = "held"
        const val CACHED = "cached"
        const val DELTA = "delta"
        const val DOWNLOAD = "download"
    }
}

/**
 * Checks items against a blindmatch server.
 *
 * [url] is `http://HOST:PORT` (plaintext: loopback or a trusted network) or
 * `https://HOST:PORT` (TLS with the JVM's roots). With [cacheDir] the
 * history and the table persist across restarts (one directory per
 * operator key). [quorum] and [logPolicy] refuse a table not co-signed by
 * enough of the organisations the app pins, or not in the operator's
 * transparency log (SPEC Sections 15.6 and 16.6); [maxAgeSeconds] refuses a
 * stale list. Every call has a deadline ([timeoutMs], [downloadTimeoutMs]
 * for each attempt at a table or a delta) and a transient failure is
 * retried up to [attempts] times, the first after [firstDelayMs]. Errors are
 * [BlindmatchException]s (bindings/ERRORS.md), or the last
 * [StatusRuntimeException] once the retries are spent. One client may be
 * shared between threads (its calls take turns). A cache directory is for
 * one client at a time: two processes that write one directory can set
 * each other's history back.
 */
class Client(
    url: String,
    private val operator: OperatorKey,
    cacheDir: File? = null,
    private val quorum: Quorum? = null,
    private val logPolicy: LogPolicy? = null,
    private val maxAgeSeconds: Long? = null,
    private val timeoutMs: Long = 30_000,
    private val downloadTimeoutMs: Long = 600_000,
    private val attempts: Int = 5,
    private val firstDelayMs: Long = 200,
) : AutoCloseable {
    private val channel: ManagedChannel = when {
        url.startsWith("http://") -> ManagedChannelBuilder.forTarget(url.removePrefix("http://")).usePlaintext().build()
        url.startsWith("https://") -> ManagedChannelBuilder.forTarget(url.removePrefix("https://")).useTransportSecurity().build()
        else -> throw IllegalArgumentException("url \"$url\": expected http://HOST:PORT or https://HOST:PORT")
    }
    private val dir: File? = cacheDir?.let {
        File(it, operator.toHex()).apply {
            mkdirs()
            // The owner's alone, where the file system has POSIX modes.
            runCatching { Files.setPosixFilePermissions(toPath(), PosixFilePermissions.fromString("rwx------")) }
        }
    }

    private var history: History = History(operator)
    private var table: Table? = null
    private var maxBatch = 0

    /** The manifest of the table held, once refreshed. */
    var manifest: Manifest? = null
        private set

    init {
        reloadHistory()
    }

    /** The cache's history as it is now. */
    private fun reloadHistory() {
        // Throws History if it does not verify: starting over silently would
        // drop the rollback protection it holds (bindings/ERRORS.md).
        read("history")?.let { history = History.restore(operator, it) }
    }

    /**
     * Fetches the manifest, verifies it and brings the table up to its
     * version. Throws a [BlindmatchException] if the manifest is refused
     * (the table held stays in use).
     */
    @Synchronized
    fun refresh(): Refreshed {
        reloadHistory()
        val request = GetManifestRequest.newBuilder().setLogSize(history.logSize().toLong()).build()
        val response = retried { tables(timeoutMs).getManifest(request) }
        var m = Manifest.verify(response.statement.toByteArray(), response.signature.toByteArray(), operator)
        val cosignatures = response.cosignaturesList.map {
            CoSignature(it.orgKey.toByteArray(), it.name, it.signature.toByteArray())
        }
        quorum?.let { m = m.requireQuorum(it, cosignatures) }
        logPolicy?.let {
            m = m.requireLogged(it, response.logProof, response.logConsistencyList.map { c -> c.toByteArray() }, cosignatures)
        }
        maxAgeSeconds?.let { m.checkAge(it.toULong(), (System.currentTimeMillis() / 1000).toULong()) }
        val accepted = history.check(m)
        val previous = history.newest()
        val (t, how) = tableFor(m)
        // The table first, then the history that names it: a crash between
        // the two leaves a table the history does not need yet.
        if (how == Refreshed.DELTA || how == Refreshed.DOWNLOAD) write(tableFile(m.tableId()), t.encode())
        reloadHistory() // `record` leaves a history that moved on alone
        history.record(accepted)
        write("history", history.encode())
        // One version is kept.
        for (old in listOf(previous, manifest)) {
            if (old != null && !old.tableId().contentEquals(m.tableId())) remove(tableFile(old.tableId()))
        }
        table = t
        manifest = m
        maxBatch = response.maxBatch
        return Refreshed(m.version().toLong(), how)
    }

    /**
     * Version 1: submits [items] in batches of the server's size; returns
     * how many vouchers were acknowledged, which says nothing about matches.
     */
    @Synchronized
    fun check(items: List<ItemToCheck>): Int {
        val t = current()
        return items.chunked(batchSize()).sumOf { send(t.submission(it)) }
    }

    /**
     * Threshold mode: submits [uploads] under [account] (keep an upload's
     * voucher id across retries and restarts: it counts once).
     */
    @Synchronized
    fun checkAccount(account: Account, uploads: List<Upload>): Int {
        val t = current()
        return uploads.chunked(batchSize()).sumOf { send(t.accountSubmission(account, it)) }
    }

    /** Closes the channel. */
    override fun close() {
        channel.shutdown().awaitTermination(5, TimeUnit.SECONDS)
    }

    private fun current(): Table = table ?: run { refresh(); table!! }

    private fun batchSize() = maxOf(1, maxBatch)

    private fun tables(deadlineMs: Long) =
        TableServiceGrpc.newBlockingStub(channel).withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)

    private fun tableFor(m: Manifest): Pair<Table, String> {
        table?.takeIf { it.tableId().contentEquals(m.tableId()) }?.let { return it to Refreshed.HELD }
        read(tableFile(m.tableId()))?.let { saved ->
            try {
                return Table.open(saved, m) to Refreshed.CACHED
            } catch (e: BlindmatchException) {
                remove(tableFile(m.tableId())) // damaged: fetch again
            }
        }
        var held = table
        var heldManifest = manifest
        val newest = history.newest()
        if (held == null && newest != null) {
            // After a restart: the cache's copy of the version held before.
            read(tableFile(newest.tableId()))?.let { saved ->
                try {
                    held = Table.open(saved, newest)
                    heldManifest = newest
                } catch (e: BlindmatchException) {
                    // damaged: no delta base
                }
            }
        }
        // A delta is between tables of one shape; for any other the server
        // has none (NOT_FOUND, SPEC 13.4) and the table is downloaded in full.
        val base = held
        val baseManifest = heldManifest
        if (base != null && baseManifest != null && baseManifest.k() == m.k() && baseManifest.nSlots() == m.nSlots()) {
            try {
                return delta(base, m) to Refreshed.DELTA
            } catch (e: StatusRuntimeException) {
                // no delta for this pair: download in full
            } catch (e: BlindmatchException.Invalid) {
                // a delta that does not verify: download in full
            } catch (e: BlindmatchException.Malformed) {
                // likewise
            }
        }
        return download(m) to Refreshed.DOWNLOAD
    }

    private fun delta(held: Table, m: Manifest): Table {
        val delta = DeltaDownload(held, m)
        val request = DownloadDeltaRequest.newBuilder()
            .setFromTableId(ByteString.copyFrom(held.tableId()))
            .setToTableId(ByteString.copyFrom(m.tableId()))
            .build()
        tables(downloadTimeoutMs).downloadDelta(request).forEach { delta.push(it.indices.toByteArray(), it.slots.toByteArray()) }
        return delta.finish()
    }

    private fun download(m: Manifest): Table {
        val part = tableFile(m.tableId()) + ".part"
        val download = try {
            TableDownload.resume(m, read(part) ?: ByteArray(0))
        } catch (e: BlindmatchException) {
            remove(part) // not a prefix of this table: start over
            TableDownload(m)
        }
        // Only whole chunks were kept: new ones are appended after them.
        dir?.let { d ->
            File(d, part).takeIf { it.exists() }?.let { RandomAccessFile(it, "rw").use { f -> f.setLength(download.offset().toLong()) } }
        }
        val backoff = Backoff(attempts.toUInt(), firstDelayMs.toULong())
        while (true) {
            val request = DownloadTableRequest.newBuilder()
                .setTableId(ByteString.copyFrom(m.tableId()))
                .setOffset(download.offset().toLong())
                .build()
            try {
                tables(downloadTimeoutMs).downloadTable(request).forEach { chunk ->
                    // Throws for a chunk that does not verify; what was
                    // verified before it is kept, and a resume starts there.
                    download.push(chunk.offset.toULong(), chunk.slots.toByteArray(), chunk.proofList.map { it.toByteArray() })
                    append(part, chunk.slots.toByteArray())
                }
                break
            } catch (e: StatusRuntimeException) {
                wait(backoff, e)
            }
        }
        try {
            return download.finish()
        } finally {
            remove(part)
        }
    }

    /** Sends one batch, the same request on every try: the server stores it once. */
    private fun send(s: Submission): Int {
        val request = SubmitRequest.newBuilder()
            .setTableId(ByteString.copyFrom(s.tableId))
            .addAllVouchers(s.vouchers.map { ByteString.copyFrom(it) })
            .setSubmissionId(ByteString.copyFrom(s.id))
            .setAccountId(ByteString.copyFrom(s.accountId))
            .build()
        return retried {
            VoucherServiceGrpc.newBlockingStub(channel).withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS)
                .submit(request).accepted
        }
    }

    private fun <T> retried(call: () -> T): T {
        val backoff = Backoff(attempts.toUInt(), firstDelayMs.toULong())
        while (true) {
            try {
                return call()
            } catch (e: StatusRuntimeException) {
                wait(backoff, e)
            }
        }
    }

    private fun read(name: String): ByteArray? = dir?.let {
        try {
            File(it, name).readBytes()
        } catch (e: FileNotFoundException) {
            null
        }
    }

    /** Whole or not at all: a crash leaves the old file. */
    private fun write(name: String, bytes: ByteArray) {
        val d = dir ?: return
        val tmp = File.createTempFile(".tmp-", null, d)
        try {
            FileOutputStream(tmp).use { out ->
                out.write(bytes)
                out.fd.sync()
            }
            Files.move(tmp.toPath(), File(d, name).toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
        } finally {
            tmp.delete()
        }
    }

    private fun append(name: String, bytes: ByteArray) {
        dir?.let { File(it, name).appendBytes(bytes) }
    }

    private fun remove(name: String) {
        dir?.let { File(it, name).delete() }
    }

    private companion object {
        val PUSHBACK: Metadata.Key<String> = Metadata.Key.of("grpc-retry-pushback-ms", Metadata.ASCII_STRING_MARSHALLER)

        /** Sleeps as the core's backoff says for [e], or rethrows it. */
        fun wait(backoff: Backoff, e: StatusRuntimeException) {
            val ms = backoff.retry(e.status.code.value().toUInt(), e.trailers?.get(PUSHBACK)) ?: throw e
            Thread.sleep(ms.toLong())
        }

        fun tableFile(id: ByteArray) = "table-" + id.joinToString("") { "%02x".format(it) }
    }
}
