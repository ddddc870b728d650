// Check items against a blindmatch server from Kotlin: the whole flow.
//
// The app keeps its own gRPC stack (here grpc-java's stubs, generated from
// proto/proto/blindmatch/v1/blindmatch.proto; on Android, grpc-okhttp); the
// org.blindmatch classes decide what to trust and what to send.
package org.blindmatch.example

import blindmatch.v1.Blindmatch.DownloadDeltaRequest
import blindmatch.v1.Blindmatch.DownloadTableRequest
import blindmatch.v1.Blindmatch.GetManifestRequest
import blindmatch.v1.Blindmatch.SubmitRequest
import blindmatch.v1.TableServiceGrpc
import blindmatch.v1.VoucherServiceGrpc
import com.google.protobuf.ByteString
import io.grpc.Channel
import io.grpc.Metadata
import io.grpc.StatusRuntimeException
import org.blindmatch.Account
import org.blindmatch.BlindmatchException
import org.blindmatch.DeltaDownload
import org.blindmatch.History
import org.blindmatch.ItemToCheck
import org.blindmatch.Manifest
import org.blindmatch.Submission
import org.blindmatch.Table
import org.blindmatch.TableDownload
import org.blindmatch.Upload
import org.blindmatch.Backoff

/** A verified table and the server's batch limit. */
class Fetched(val manifest: Manifest, val maxBatch: Int, val table: Table)

/**
 * The current table, verified: a delta from [held] if one applies, else a
 * full download checked chunk by chunk. Throws [BlindmatchException]
 * (Rollback, Equivocation, BadSignature, Invalid) for what must be refused.
 */
fun fetchTable(channel: Channel, history: History, held: Table? = null): Fetched {
    val tables = TableServiceGrpc.newBlockingStub(channel)
    val response = tables.getManifest(GetManifestRequest.getDefaultInstance())
    // Only the signed statement is trusted; the other fields are copies.
    val manifest = Manifest.verify(
        response.statement.toByteArray(), response.signature.toByteArray(), history.operator()
    )
    val accepted = history.check(manifest) // throws Rollback or Equivocation
    var table: Table? = null
    if (held != null && held.tableId().contentEquals(manifest.tableId())) {
        table = held
    } else if (held != null) {
        val delta = DeltaDownload(held, manifest)
        val request = DownloadDeltaRequest.newBuilder()
            .setFromTableId(ByteString.copyFrom(held.tableId()))
            .setToTableId(ByteString.copyFrom(manifest.tableId()))
            .build()
        table = try {
            tables.downloadDelta(request).forEach { delta.push(it.indices.toByteArray(), it.slots.toByteArray()) }
            delta.finish()
        } catch (e: StatusRuntimeException) {
            null // no delta for this pair: download in full
        } catch (e: BlindmatchException) {
            null
        }
    }
    if (table == null) {
        val download = TableDownload(manifest)
        val request = DownloadTableRequest.newBuilder()
            .setTableId(ByteString.copyFrom(manifest.tableId()))
            .setOffset(download.offset().toLong())
            .build()
        tables.downloadTable(request).forEach { chunk ->
            download.push(
                chunk.offset.toULong(),
                chunk.slots.toByteArray(),
                chunk.proofList.map { it.toByteArray() },
            )
        }
        table = download.finish()
    }
    history.record(accepted) // once the table is in hand
    return Fetched(manifest, response.maxBatch, table)
}

private val PUSHBACK: Metadata.Key<String> =
    Metadata.Key.of("grpc-retry-pushback-ms", Metadata.ASCII_STRING_MARSHALLER)

/**
 * Submits [items] in batches of [maxBatch]; returns how many were
 * acknowledged. Each batch is retried unchanged as the core's [Backoff]
 * allows, so the server stores it once.
 */
fun submit(channel: Channel, table: Table, items: List<ItemToCheck>, maxBatch: Int): Int =
    items.chunked(maxBatch).sumOf { send(channel, table.submission(it)) }

/**
 * Threshold mode's [submit]: [uploads] under [account], in batches of
 * [maxBatch], each bound to the account id.
 */
fun submitForAccount(channel: Channel, table: Table, account: Account, uploads: List<Upload>, maxBatch: Int): Int =
    uploads.chunked(maxBatch).sumOf { send(channel, table.accountSubmission(account, it)) }

/** Sends one batch, retried unchanged as the core's [Backoff] allows. */
private fun send(channel: Channel, submission: Submission): Int {
    val vouchers = VoucherServiceGrpc.newBlockingStub(channel)
    val request = SubmitRequest.newBuilder()
        .setTableId(ByteString.copyFrom(submission.tableId))
        .addAllVouchers(submission.vouchers.map { ByteString.copyFrom(it) })
        .setSubmissionId(ByteString.copyFrom(submission.id))
        .setAccountId(ByteString.copyFrom(submission.accountId))
        .build()
    val backoff = Backoff(5u, 200u)
    while (true) {
        try {
            return vouchers.submit(request).accepted
        } catch (e: StatusRuntimeException) {
            val pushback = e.trailers?.get(PUSHBACK)
            val waitMs = backoff.retry(e.status.code.value().toUInt(), pushback) ?: throw e
            Thread.sleep(waitMs.toLong())
        }
    }
}
