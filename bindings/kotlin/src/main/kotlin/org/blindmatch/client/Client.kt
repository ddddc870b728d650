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
import io.grpc.Channel
import io.grpc.Grpc
import io.grpc.InsecureChannelCredentials
import io.grpc.ManagedChannel
import io.grpc.Metadata
import io.grpc.Status
import io.grpc.StatusRuntimeException
import io.grpc.TlsChannelCredentials
import java.io.File
import java.net.Inet6Address
import java.net.InetAddress
import java.nio.ByteBuffer
import java.nio.channels.FileChannel
import java.nio.file.FileSystems
import java.nio.file.Files
import java.nio.file.LinkOption
import java.nio.file.NoSuchFileException
import java.nio.file.OpenOption
import java.nio.file.Path
import java.nio.file.StandardCopyOption
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.FileAttribute
import java.nio.file.attribute.PosixFilePermissions
import java.security.SecureRandom
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

/**
 * What [Client.refresh] did: the version now held, and how it came.
 *
 * @constructor The result as the client makes it (an app's fake of the
 *   client makes one too).
 */
data class Refreshed(
    /** The table version now held. */
    val version: Long,
    /** How: [HELD] (already up to date), [CACHED] (from the cache directory), [DELTA] or [DOWNLOAD]. */
    val how: String,
    /**
     * Why the delta from the table held was not used, when one was tried
     * and the table was downloaded in full instead: the core's refusal
     * (its message) or the server's status (`NOT_FOUND: ...`). Null
     * otherwise.
     */
    val deltaRefused: String? = null,
) {
    /** The values of [how]. */
    companion object {
        /** The table held was already the manifest's. */
        const val HELD = "held"

        /** The table came from the cache directory. */
        const val CACHED = "cached"

        /** The table was made from the one held and the slots that changed. */
        const val DELTA = "delta"

        /** The table was downloaded in full (resuming a partial download if one was kept). */
        const val DOWNLOAD = "download"
    }
}

/**
 * A [Client.check] or [Client.checkAccount] that failed after submitting
 * began.
 *
 * Earlier batches were acknowledged ([acknowledged] vouchers) and are
 * stored; [remaining] are the items (or uploads) of the call that were
 * not, in the order given, from the first batch that failed to the end.
 * Retry with [remaining] only: calling `check` again with every item would
 * submit the acknowledged ones again under new submission ids, and a
 * version-1 server would store them twice. [cause] is the failure itself:
 * the last [StatusRuntimeException] once the retries are spent, or a
 * [BlindmatchException] from a refresh the server asked for.
 *
 * The message reads as in every blindmatch client: `N of M acknowledged;
 * the rest failed: ` and then, for a [StatusRuntimeException], the status
 * as `CODE_NAME: description` (the description empty when the status has
 * none), for a [BlindmatchException] the core's message (its `reason`).
 *
 * @constructor The client makes it: [total] items in the call, [cause]
 *   what failed.
 */
class IncompleteException(
    /** Vouchers acknowledged by the earlier batches of the call. */
    val acknowledged: Int,
    /**
     * The [ItemToCheck]s of a [Client.check] (or the [Upload]s of a
     * [Client.checkAccount]) that were not acknowledged, in the order
     * given: [remainingItems] and [remainingUploads] as their types.
     */
    val remaining: List<Any>,
    total: Int,
    cause: Throwable,
) : Exception(
    "$acknowledged of $total acknowledged; the rest failed: ${detail(cause)}",
    cause,
) {
    /** [remaining] of a [Client.check]. */
    val remainingItems: List<ItemToCheck> get() = remaining.filterIsInstance<ItemToCheck>()

    /** [remaining] of a [Client.checkAccount]. */
    val remainingUploads: List<Upload> get() = remaining.filterIsInstance<Upload>()

    private companion object {
        /** What failed, worded as every client words it. */
        fun detail(cause: Throwable): String = when (cause) {
            is StatusRuntimeException -> "${cause.status.code.name}: ${cause.status.description.orEmpty()}"
            is BlindmatchException -> reason(cause)
            else -> cause.toString()
        }

        /** The core's message: uniffi's `message` adds the field names (`reason=...`). */
        fun reason(e: BlindmatchException): String = when (e) {
            is BlindmatchException.BadSignature -> e.reason
            is BlindmatchException.Rollback -> e.reason
            is BlindmatchException.Equivocation -> e.reason
            is BlindmatchException.TooOld -> e.reason
            is BlindmatchException.Quorum -> e.reason
            is BlindmatchException.Log -> e.reason
            is BlindmatchException.Invalid -> e.reason
            is BlindmatchException.Malformed -> e.reason
            is BlindmatchException.Input -> e.reason
            is BlindmatchException.History -> e.reason
            is BlindmatchException.Mode -> e.reason
            is BlindmatchException.Account -> e.reason
            is BlindmatchException.State -> e.reason
        }
    }
}

/**
 * Checks items against a blindmatch server.
 *
 * Made from a url (`http://HOST[:PORT]`: plaintext, for a loopback or a
 * trusted network; `https://HOST[:PORT]`: TLS with the JVM's roots), the
 * client makes its own channel with [Grpc.newChannelBuilder], through
 * whichever gRPC transport is on the classpath (grpc-netty-shaded comes
 * with the jar; an Android app puts grpc-okhttp in its place). Made from
 * an [io.grpc.Channel] the app built (its own TLS, a proxy,
 * `ClientInterceptors.intercept(channel, ...)` that adds the metadata
 * authenticating an account, OkHttpChannelBuilder on Android), it uses that
 * one and leaves it to the app to shut down.
 *
 * With `cacheDir` the history and the table persist across restarts (one
 * directory per operator key; files a crash left half-written are removed
 * when the client is made, partial downloads of other tables after each
 * refresh; nothing there is read or written through a link). `quorum` and
 * `logPolicy` refuse a table not co-signed by enough of the organisations
 * the app pins, or not in the operator's transparency log (SPEC Sections
 * 15.6 and 16.6); `maxAgeSeconds` refuses a stale list. Every call has a
 * deadline (`timeoutMs`; `downloadTimeoutMs` for each attempt at a table
 * or a delta) and a transient failure is retried up to `attempts` times,
 * the first after `firstDelayMs`, as the core's [Backoff] says.
 *
 * Errors are [BlindmatchException]s (bindings/ERRORS.md), the last
 * [StatusRuntimeException] once the retries are spent, or an
 * [IncompleteException] for a check that failed after submitting began.
 * One client may be shared between threads (its calls take turns). A
 * cache directory is for one client at a time: two processes that write
 * one directory can set each other's history back.
 */
class Client private constructor(
    transport: Transport,
    private val operator: OperatorKey,
    cacheDir: File?,
    private val quorum: Quorum?,
    private val logPolicy: LogPolicy?,
    private val maxAgeSeconds: Long?,
    private val timeoutMs: Long,
    private val downloadTimeoutMs: Long,
    private val attempts: Int,
    private val firstDelayMs: Long,
) : AutoCloseable {
    /**
     * A client of the server at [url], `http://HOST[:PORT]` or
     * `https://HOST[:PORT]` (HOST a name, a dotted-quad IPv4 address or a
     * bracketed IPv6 address; PORT from 1 to 65535, by default 80 for http
     * and 443 for https), over a channel it makes and [close] shuts down.
     * [operator] is the operator's verifying key the app pins.
     *
     * @throws IllegalArgumentException for a url with a path (even `/`), a
     *   query, a fragment, user info, another scheme or a bad host or port
     *   (numbers alone, such as `1.2.3`, that are not an IPv4 address);
     *   the message names the url and what is wrong.
     */
    constructor(
        url: String,
        operator: OperatorKey,
        cacheDir: File? = null,
        quorum: Quorum? = null,
        logPolicy: LogPolicy? = null,
        maxAgeSeconds: Long? = null,
        timeoutMs: Long = 30000,
        downloadTimeoutMs: Long = 600000,
        attempts: Int = 5,
        firstDelayMs: Long = 200,
    ) : this(
        Transport.of(url), operator, cacheDir, quorum, logPolicy, maxAgeSeconds,
        timeoutMs, downloadTimeoutMs, attempts, firstDelayMs,
    )

    /**
     * A client over [channel], which the app made (and shuts down itself:
     * [close] leaves it open). To add metadata to every call, for instance
     * what authenticates an account, pass
     * `ClientInterceptors.intercept(channel, interceptor)`.
     */
    constructor(
        channel: Channel,
        operator: OperatorKey,
        cacheDir: File? = null,
        quorum: Quorum? = null,
        logPolicy: LogPolicy? = null,
        maxAgeSeconds: Long? = null,
        timeoutMs: Long = 30000,
        downloadTimeoutMs: Long = 600000,
        attempts: Int = 5,
        firstDelayMs: Long = 200,
    ) : this(
        Transport(channel, null), operator, cacheDir, quorum, logPolicy, maxAgeSeconds,
        timeoutMs, downloadTimeoutMs, attempts, firstDelayMs,
    )

    private val channel: Channel = transport.channel
    private val owned: ManagedChannel? = transport.owned
    private val dir: File? = cacheDir?.let {
        File(it, operator.toHex()).apply {
            mkdirs()
            // The owner's alone, where the file system has POSIX modes.
            runCatching { Files.setPosixFilePermissions(toPath(), PosixFilePermissions.fromString("rwx------")) }
            // What a crash left between writing a file and renaming it.
            listFiles { f -> f.name.startsWith(TMP_PREFIX) }?.forEach { f -> f.delete() }
        }
    }

    private var history: History = History(operator)
    private var table: Table? = null
    private var maxBatch = 0

    /**
     * The manifest of the table held, once refreshed (null before): its
     * [Manifest.version], [Manifest.threshold] and [Manifest.syntheticBound]
     * (threshold mode's s, from which an account's synthetic rate is
     * chosen).
     */
    var manifest: Manifest? = null
        private set

    init {
        try {
            reloadHistory()
        } catch (e: Throwable) {
            // No client to close: the channel made for it goes now.
            owned?.shutdownNow()
            throw e
        }
    }

    /**
     * Fetches the manifest, verifies it and brings the table up to its
     * version. Throws a [BlindmatchException] if the manifest is refused
     * (the table held stays in use), or the last [StatusRuntimeException]
     * once the retries are spent. A server that moved to a newer table
     * between the manifest and its download (FAILED_PRECONDITION) is asked
     * again, once, from a new manifest.
     */
    @Synchronized
    fun refresh(): Refreshed = try {
        refreshOnce()
    } catch (e: StatusRuntimeException) {
        if (e.status.code != Status.Code.FAILED_PRECONDITION) throw e
        refreshOnce()
    }

    /**
     * Version 1: submits [items] in batches of the server's size ([refresh]
     * first if no table is held); returns how many vouchers were
     * acknowledged, which says nothing about matches.
     *
     * A table that changed meanwhile (the server refuses the old one's
     * vouchers with FAILED_PRECONDITION and stores nothing, SPEC 12.2) is
     * fetched and the batch made again from it, once per batch.
     *
     * @throws IncompleteException once submitting began: what was
     *   acknowledged and what to submit again (only that).
     */
    @Synchronized
    fun check(items: List<ItemToCheck>): Int = submitAll(items) { t, chunk -> t.submission(chunk) }

    /**
     * Threshold mode: submits [uploads] under [account] (keep an upload's
     * voucher id across retries and restarts: the same upload counts
     * once), as [check] does.
     *
     * @throws IncompleteException once submitting began, as [check].
     */
    @Synchronized
    fun checkAccount(account: Account, uploads: List<Upload>): Int =
        submitAll(uploads) { t, chunk -> t.accountSubmission(account, chunk) }

    /** Shuts down the channel the client made from a url (an app's channel stays open). */
    override fun close() {
        owned?.shutdown()?.awaitTermination(5, TimeUnit.SECONDS)
    }

    private fun refreshOnce(): Refreshed {
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
        val (t, how, deltaRefused) = tableFor(m)
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
        // And no partial download but this table's: one of a version that
        // was replaced before it finished would stay forever.
        val part = tableFile(m.tableId()) + PART
        dir?.listFiles { f -> f.name.startsWith(TABLE_PREFIX) && f.name.endsWith(PART) && f.name != part }
            ?.forEach { it.delete() } // a link: the link itself
        table = t
        manifest = m
        maxBatch = response.maxBatch
        return Refreshed(m.version().toLong(), how, deltaRefused)
    }

    /** The cache's history as it is now. */
    private fun reloadHistory() {
        // Throws History if it does not verify: starting over silently would
        // drop the rollback protection it holds (bindings/ERRORS.md).
        read("history")?.let { history = History.restore(operator, it) }
    }

    private fun current(): Table = table ?: run { refresh(); table!! }

    private fun batchSize() = maxOf(1, maxBatch)

    /**
     * Submits [all] batch by batch. Errors before the first Submit (the
     * refresh that gets the first table) are thrown as they are; after it,
     * as an [IncompleteException] that names what is left.
     */
    private fun <T : Any> submitAll(all: List<T>, make: (Table, List<T>) -> Submission): Int {
        var t = current()
        var acknowledged = 0
        var start = 0
        var begun = false
        try {
            while (start < all.size) {
                var chunk = all.subList(start, minOf(all.size, start + batchSize()))
                val first = make(t, chunk)
                begun = true
                val accepted = try {
                    send(first)
                } catch (e: StatusRuntimeException) {
                    if (e.status.code != Status.Code.FAILED_PRECONDITION) throw e
                    // The server moved to another table and stored nothing
                    // (SPEC 12.2): fetch it, make the batch again, once.
                    refresh()
                    t = current()
                    chunk = all.subList(start, minOf(all.size, start + batchSize()))
                    send(make(t, chunk))
                }
                acknowledged += accepted
                start += chunk.size
            }
        } catch (e: StatusRuntimeException) {
            if (!begun) throw e
            throw IncompleteException(acknowledged, all.subList(start, all.size).toList(), all.size, e)
        } catch (e: BlindmatchException) {
            if (!begun) throw e
            throw IncompleteException(acknowledged, all.subList(start, all.size).toList(), all.size, e)
        }
        return acknowledged
    }

    private fun tables(deadlineMs: Long) =
        TableServiceGrpc.newBlockingStub(channel).withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)

    /** The table for [m], how it came, and why a delta was refused. */
    private fun tableFor(m: Manifest): Triple<Table, String, String?> {
        table?.takeIf { it.tableId().contentEquals(m.tableId()) }?.let { return Triple(it, Refreshed.HELD, null) }
        readTable(tableFile(m.tableId()))?.let { saved ->
            try {
                return Triple(Table.open(saved, m), Refreshed.CACHED, null)
            } catch (e: BlindmatchException) {
                remove(tableFile(m.tableId())) // damaged: fetch again
            }
        }
        var held = table
        var heldManifest = manifest
        val newest = history.newest()
        if (held == null && newest != null) {
            // After a restart: the cache's copy of the version held before.
            readTable(tableFile(newest.tableId()))?.let { saved ->
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
        var refused: String? = null
        if (base != null && baseManifest != null && baseManifest.k() == m.k() && baseManifest.nSlots() == m.nSlots()) {
            try {
                return Triple(delta(base, m), Refreshed.DELTA, null)
            } catch (e: StatusRuntimeException) {
                refused = e.message // no delta for this pair: "NOT_FOUND: ..."
            } catch (e: BlindmatchException.Invalid) {
                refused = e.reason // a delta that does not verify
            } catch (e: BlindmatchException.Malformed) {
                refused = e.reason
            }
            // Either way: download in full.
        }
        return Triple(download(m), Refreshed.DOWNLOAD, refused)
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
        val part = tableFile(m.tableId()) + PART
        val download = try {
            TableDownload.resume(m, readTable(part) ?: ByteArray(0))
        } catch (e: BlindmatchException) {
            remove(part) // not a prefix of this table: start over
            TableDownload(m)
        }
        // Only whole chunks were kept: new ones are appended after them.
        truncate(part, download.offset().toLong())
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

    /**
     * The bytes of [name] in the cache directory, or null if there is none.
     * Never through a link (NOFOLLOW_LINKS): the client makes none, so a
     * link there was planted, and reading through it would take in a file
     * the client never wrote; for the history that is an error (an
     * IOException), since starting over without it would drop its
     * rollback protection.
     */
    private fun read(name: String): ByteArray? {
        val path = dir?.toPath()?.resolve(name) ?: return null
        return try {
            Files.newInputStream(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS).use { it.readBytes() }
        } catch (e: NoSuchFileException) {
            null
        }
    }

    /**
     * A table or a partial download, as [read]; a link in its place is
     * removed (the link, not what it names) and the table fetched afresh,
     * so that nothing is read from, cut or appended to through it.
     */
    private fun readTable(name: String): ByteArray? {
        val path = dir?.toPath()?.resolve(name) ?: return null
        if (Files.isSymbolicLink(path)) Files.deleteIfExists(path)
        return read(name)
    }

    /**
     * Whole or not at all: a crash leaves the old file (and a `.tmp-` file
     * the next client removes). The temporary file is created new, never
     * through a link an attacker left (CREATE_NEW, NOFOLLOW_LINKS), mode
     * 0600 where the file system has POSIX modes.
     */
    private fun write(name: String, bytes: ByteArray) {
        val d = dir ?: return
        val tmp = d.toPath().resolve(TMP_PREFIX + hex(ByteArray(12).also { RANDOM.nextBytes(it) }))
        try {
            FileChannel.open(tmp, setOf(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS), *OWNER_ONLY)
                .use { out ->
                    writeAll(out, bytes)
                    out.force(true)
                }
            Files.move(tmp, d.toPath().resolve(name), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE)
        } finally {
            Files.deleteIfExists(tmp)
        }
    }

    /** Appends to [name] (created if missing), never through a link. */
    private fun append(name: String, bytes: ByteArray) {
        val d = dir ?: return
        val options = setOf<OpenOption>(StandardOpenOption.CREATE, StandardOpenOption.APPEND, LinkOption.NOFOLLOW_LINKS)
        FileChannel.open(d.toPath().resolve(name), options, *OWNER_ONLY).use { writeAll(it, bytes) }
    }

    /** Cuts [name] (if there is one) to [length], never through a link. */
    private fun truncate(name: String, length: Long) {
        val path: Path = dir?.toPath()?.resolve(name) ?: return
        try {
            FileChannel.open(path, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS).use { it.truncate(length) }
        } catch (e: NoSuchFileException) {
            // nothing kept: nothing to cut
        }
    }

    private fun remove(name: String) {
        dir?.let { File(it, name).delete() }
    }

    /** A channel and, when the client made it, the channel to shut down. */
    private class Transport(val channel: Channel, val owned: ManagedChannel?) {
        companion object {
            fun of(url: String): Transport {
                val (secure, authority) = parseUrl(url)
                val credentials = if (secure) TlsChannelCredentials.create() else InsecureChannelCredentials.create()
                // Whichever transport is on the classpath: grpc-netty-shaded
                // on a JVM, grpc-okhttp on Android. HOST:PORT without a
                // scheme is resolved by DNS (or is an address already).
                val channel = Grpc.newChannelBuilder(authority, credentials).build()
                return Transport(channel, channel)
            }
        }
    }

    private companion object {
        private const val TMP_PREFIX = ".tmp-"
        private const val TABLE_PREFIX = "table-"
        private const val PART = ".part"
        private val RANDOM = SecureRandom()
        private val PUSHBACK: Metadata.Key<String> = Metadata.Key.of("grpc-retry-pushback-ms", Metadata.ASCII_STRING_MARSHALLER)
        private val OWNER_ONLY: Array<FileAttribute<*>> =
            if ("posix" in FileSystems.getDefault().supportedFileAttributeViews()) {
                arrayOf(PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
            } else {
                emptyArray()
            }
        private val HOST_NAME = Regex(
            "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\\.?",
        )

        /**
         * `http://HOST[:PORT]` or `https://HOST[:PORT]` as (TLS?,
         * `HOST:PORT`), or IllegalArgumentException naming what is wrong.
         * bindings/testkit/urls.txt holds the cases every client agrees on
         * (ClientFailuresTest checks each).
         */
        fun parseUrl(url: String): Pair<Boolean, String> {
            fun refuse(why: String): Nothing =
                throw IllegalArgumentException("url \"$url\": $why (expected http://HOST[:PORT] or https://HOST[:PORT])")
            val secure = when {
                url.startsWith("https://") -> true
                url.startsWith("http://") -> false
                else -> refuse("the scheme must be http or https")
            }
            val rest = url.substringAfter("://")
            if (rest.any { it == '/' || it == '?' || it == '#' }) refuse("a server address has no path, query or fragment")
            if ('@' in rest) refuse("a server address has no user info")
            val host: String
            val port: String?
            if (rest.startsWith("[")) {
                val close = rest.indexOf(']')
                if (close < 0) refuse("an unclosed [ in the host")
                val inside = rest.substring(1, close)
                val isIpv6 = inside.isNotEmpty() && ':' in inside && inside.all { it in '0'..'9' || it in 'a'..'f' || it in 'A'..'F' || it == ':' || it == '.' } &&
                    runCatching { InetAddress.getByName(inside) is Inet6Address }.getOrDefault(false)
                if (!isIpv6) refuse("\"$inside\" between brackets is not an IPv6 address")
                host = "[$inside]"
                val after = rest.substring(close + 1)
                port = when {
                    after.isEmpty() -> null
                    after.startsWith(":") -> after.substring(1)
                    else -> refuse("the port must be a number from 1 to 65535")
                }
            } else {
                host = rest.substringBefore(':')
                port = if (':' in rest) rest.substringAfter(':') else null
                if (host.isEmpty()) refuse("no host")
                if (!HOST_NAME.matches(host)) refuse("\"$host\" is not a host name or an IPv4 address")
                // All-numeric labels are an address, never a name: a dotted
                // quad (1.2.3 or 256.1.1.1 would be read otherwise, or not
                // at all, by one resolver or another).
                val labels = host.removeSuffix(".").split('.')
                if (labels.all { l -> l.all { it in '0'..'9' } } &&
                    (labels.size != 4 || labels.any { it.toBigInteger() > 255.toBigInteger() })
                ) {
                    refuse("\"$host\" is not an IPv4 address (four numbers from 0 to 255)")
                }
            }
            val number = when (port) {
                null -> if (secure) 443 else 80
                else -> port.takeIf { p -> p.isNotEmpty() && p.length <= 5 && p.all { it in '0'..'9' } }?.toInt()
                    ?.takeIf { it in 1..65535 } ?: refuse("the port must be a number from 1 to 65535")
            }
            return secure to "$host:$number"
        }

        /** Sleeps as the core's backoff says for [e], or rethrows it. */
        fun wait(backoff: Backoff, e: StatusRuntimeException) {
            val ms = backoff.retry(e.status.code.value().toUInt(), e.trailers?.get(PUSHBACK)) ?: throw e
            Thread.sleep(ms.toLong())
        }

        fun hex(bytes: ByteArray) = bytes.joinToString("") { "%02x".format(it) }

        fun tableFile(id: ByteArray) = TABLE_PREFIX + hex(id)

        fun writeAll(out: FileChannel, bytes: ByteArray) {
            val buffer = ByteBuffer.wrap(bytes)
            while (buffer.hasRemaining()) out.write(buffer)
        }
    }
}
