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
import java.nio.file.Files
import java.nio.file.StandardCopyOption
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
 * for a whole table) and a transient failure is retried up to [attempts]
 * times, the first after [firstDelayMs]. Errors are [BlindmatchException]s
 * (bindings/ERRORS.md), or the last [StatusRuntimeException] once the
 * retries are spent. Not thread-safe: one client per thread, or a lock.
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
    private val dir: File? = cacheDir?.let { File(it, operator.toHex()).apply { mkdirs() } }

    // Throws History if it does not verify: starting over silently would
    // drop the rollback protection it holds (bindings/ERRORS.md).
    private val history: History = read("history")?.let { History.restore(operator, it) } ?: History(operator)
    private var table: Table? = null
    private var maxBatch = 0

    /** The manifest of the table held, once refreshed. */
    var manifest: Manifest? = null
        private set

    /**
     * Fetches the manifest, verifies it and brings the table up to its
     * version. Throws a [BlindmatchException] if the manifest is refused
     * (the table held stays in use).
     */
    fun refresh(): Refreshed {
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
        val (t, how) = tableFor(m)
        history.record(accepted)
        write("history", history.encode())
        val previous = table
        table = t
        manifest = m
        write(tableFile(m.tableId()), t.encode())
        if (previous != null && !previous.tableId().contentEquals(m.tableId())) remove(tableFile(previous.tableId()))
        maxBatch = response.maxBatch
        return Refreshed(m.version().toLong(), how)
    }

    /**
     * Version 1: submits [items] in batches of the server's size; returns
     * how many vouchers were acknowledged, which says nothing about matches.
     */
    fun check(items: List<ItemToCheck>): Int {
        val t = current()
        return items.chunked(batchSize()).sumOf { send(t.submission(it)) }
    }

    /**
     * Threshold mode: submits [uploads] under [account] (keep an upload's
     * voucher id across retries and restarts: it counts once).
     */
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
        val held = table
        val heldManifest = manifest
        // A delta is between tables of one shape; for any other the server
        // has none (NOT_FOUND, SPEC 13.4) and the table is downloaded in full.
        if (held != null && heldManifest != null && heldManifest.k() == m.k() && heldManifest.nSlots() == m.nSlots()) {
            try {
                return delta(held, m) to Refreshed.DELTA
            } catch (e: StatusRuntimeException) {
                // no delta for this pair: download in full
            } catch (e: BlindmatchException) {
                // a delta that does not verify: download in full
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
