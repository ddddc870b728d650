package org.blindmatch

import blindmatch.v1.Blindmatch.Manifest as ManifestResponse
import com.google.protobuf.ByteString
import io.grpc.CallOptions
import io.grpc.Channel
import io.grpc.ClientCall
import io.grpc.ClientInterceptor
import io.grpc.ClientInterceptors
import io.grpc.ForwardingClientCall
import io.grpc.ForwardingClientCallListener
import io.grpc.Grpc
import io.grpc.InsecureChannelCredentials
import io.grpc.ManagedChannel
import io.grpc.Metadata
import io.grpc.MethodDescriptor
import io.grpc.Status
import io.grpc.StatusRuntimeException
import java.io.File
import java.nio.file.Files
import java.nio.file.LinkOption
import java.security.MessageDigest
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import org.blindmatch.client.Client
import org.blindmatch.client.IncompleteException
import org.blindmatch.client.Refreshed
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * What the ready client does when things go wrong midway, against real
 * servers: a check that fails after some batches says what was
 * acknowledged and what remains (and the remainder is stored once); a
 * table replaced midway is fetched and the batch made again; a table
 * swapped between the manifest and its download starts the refresh over,
 * once; a refused
 * delta says why; server urls are parsed strictly (as
 * bindings/testkit/urls.txt says for every client); an app's channel (with
 * its interceptors) is used as given; a crash's temporary files and other
 * tables' partial downloads are removed; no link in the cache is followed.
 */
class ClientFailuresTest {
    private fun sha256(s: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(s.toByteArray())

    private fun item(type: String, hex: String, ad: String): ItemToCheck {
        val t = ItemType.valueOf(type.uppercase())
        return ItemToCheck(t, itemFromHex(t, hex), ad.toByteArray())
    }

    private fun scratch(): File = Files.createTempDirectory("blindmatch-client").toFile()

    private fun hex(bytes: ByteArray) = bytes.joinToString("") { "%02x".format(it) }

    /** 100 KiB of known bytes, in a file outside the cache that a link may name. */
    private fun elsewhere(): Pair<File, ByteArray> {
        val known = ByteArray(100 * 1024) { (it * 31 + 7).toByte() }
        return File(scratch(), "elsewhere").apply { writeBytes(known) } to known
    }

    private fun url(server: TestServer) = "http://" + server.target

    private fun channel(server: TestServer): ManagedChannel =
        Grpc.newChannelBuilder(server.target, InsecureChannelCredentials.create()).build()

    /**
     * Fails the calls of [method] numbered in [failing] (from 1) with [code]
     * and [description], before they reach the server.
     */
    private class Refusing(
        private val method: String,
        private val failing: (Int) -> Boolean,
        private val code: Status.Code,
        private val description: String? = "refused by the test's interceptor",
    ) : ClientInterceptor {
        val calls = AtomicInteger()

        override fun <Q, R> interceptCall(descriptor: MethodDescriptor<Q, R>, options: CallOptions, next: Channel): ClientCall<Q, R> {
            if (descriptor.bareMethodName != method || !failing(calls.incrementAndGet())) return next.newCall(descriptor, options)
            return object : ClientCall<Q, R>() {
                override fun start(listener: Listener<R>, headers: Metadata) =
                    listener.onClose(Status.fromCode(code).withDescription(description), Metadata())

                override fun request(numMessages: Int) {}

                override fun cancel(message: String?, cause: Throwable?) {}

                override fun halfClose() {}

                override fun sendMessage(message: Q) {}
            }
        }
    }

    /** Flips a bit of the operator's signature in the answers to the GetManifest calls numbered in [tampered]. */
    private class Tampering(private val tampered: (Int) -> Boolean) : ClientInterceptor {
        val calls = AtomicInteger()

        override fun <Q, R> interceptCall(descriptor: MethodDescriptor<Q, R>, options: CallOptions, next: Channel): ClientCall<Q, R> {
            val call = next.newCall(descriptor, options)
            if (descriptor.bareMethodName != "GetManifest" || !tampered(calls.incrementAndGet())) return call
            return object : ForwardingClientCall.SimpleForwardingClientCall<Q, R>(call) {
                override fun start(listener: Listener<R>, headers: Metadata) {
                    val flipping = object : ForwardingClientCallListener.SimpleForwardingClientCallListener<R>(listener) {
                        override fun onMessage(message: R) {
                            val response = message as ManifestResponse
                            val signature = response.signature.toByteArray().also { it[0] = (it[0].toInt() xor 1).toByte() }
                            @Suppress("UNCHECKED_CAST")
                            super.onMessage(response.toBuilder().setSignature(ByteString.copyFrom(signature)).build() as R)
                        }
                    }
                    super.start(flipping, headers)
                }
            }
        }
    }

    @Test
    fun aFailureMidwaySaysWhatWasAcknowledgedAndTheRestIsStoredOnce() {
        TestServer().use { server ->
            val listed = server.listed()
            // 64 unlisted items fill the first batch (the server's max
            // batch); the listed ones are in the second, which fails.
            val items = (0 until 64).map { ItemToCheck(ItemType.SHA256, sha256("midway-$it"), ByteArray(0)) } +
                listed.mapIndexed { i, (t, v) -> item(t, v, "midway-$i") }
            val base = channel(server)
            val refusing = Refusing("Submit", { it == 2 }, Status.Code.UNAVAILABLE)
            Client(ClientInterceptors.intercept(base, refusing), server.operator, attempts = 1).use { client ->
                val e = assertThrows<IncompleteException> { client.check(items) }
                assertEquals(64, e.acknowledged)
                assertEquals(items.drop(64), e.remaining)
                assertEquals(items.drop(64), e.remainingItems)
                assertEquals(emptyList<Upload>(), e.remainingUploads)
                assertEquals(Status.Code.UNAVAILABLE, (e.cause as StatusRuntimeException).status.code)
                assertEquals(
                    "64 of ${items.size} acknowledged; the rest failed: UNAVAILABLE: refused by the test's interceptor",
                    e.message,
                )
                assertEquals(listed.size, client.check(e.remainingItems))
            }
            // The app's channel is the app's to shut down: still open.
            assertFalse(base.isShutdown)
            base.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
            // Each listed item once: nothing was submitted twice.
            val midway = server.matches(listed.size).map { it.second }.filter { it.startsWith("midway-") }.sorted()
            assertEquals(listed.indices.map { "midway-$it" }.sorted(), midway)
        }
    }

    @Test
    fun aServerGoneMidwayIsIncompleteAndErrorsBeforeSubmittingAreThrownAsTheyAre() {
        TestServer().use { server ->
            val items = (0 until 3).map { ItemToCheck(ItemType.SHA256, sha256("gone-$it"), ByteArray(0)) }
            Client(url(server), server.operator, attempts = 2, firstDelayMs = 10, timeoutMs = 5_000).use { client ->
                client.refresh()
                server.stop()
                val e = assertThrows<IncompleteException> { client.check(items) }
                assertEquals(0 to items, e.acknowledged to e.remaining)
                val status = (e.cause as StatusRuntimeException).status
                assertEquals(Status.Code.UNAVAILABLE, status.code)
                assertEquals("0 of 3 acknowledged; the rest failed: UNAVAILABLE: ${status.description.orEmpty()}", e.message)
            }
            // No table yet: the refresh check makes first fails as itself.
            Client(url(server), server.operator, attempts = 1).use { client ->
                val e = assertThrows<StatusRuntimeException> { client.check(items) }
                assertEquals(Status.Code.UNAVAILABLE, e.status.code)
            }
        }
    }

    @Test
    fun incompleteReadsAsInEveryClient() {
        TestServer().use { server ->
            val base = channel(server)
            val items = (0 until 2).map { ItemToCheck(ItemType.SHA256, sha256("words-$it"), ByteArray(0)) }
            // A status without a description: its name, a colon, nothing
            // after it (never "null").
            val bare = Refusing("Submit", { true }, Status.Code.UNAVAILABLE, description = null)
            Client(ClientInterceptors.intercept(base, bare), server.operator, attempts = 1).use { client ->
                val e = assertThrows<IncompleteException> { client.check(items) }
                assertEquals("0 of 2 acknowledged; the rest failed: UNAVAILABLE: ", e.message)
            }
            // The refresh the server asked for (FAILED_PRECONDITION) gets a
            // manifest that does not verify: the core's message, without
            // uniffi's "reason=".
            val moved = Refusing("Submit", { it == 1 }, Status.Code.FAILED_PRECONDITION)
            val tampering = Tampering { it == 2 }
            Client(ClientInterceptors.intercept(base, moved, tampering), server.operator).use { client ->
                val e = assertThrows<IncompleteException> { client.check(items) }
                val cause = e.cause as BlindmatchException.BadSignature
                assertEquals("manifest signature does not verify under the pinned operator key", cause.reason)
                assertEquals("0 of 2 acknowledged; the rest failed: ${cause.reason}", e.message)
                assertEquals(2 to 1, tampering.calls.get() to moved.calls.get())
            }
            base.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
        }
    }

    @Test
    fun aTableReplacedMidwayIsFetchedAndTheBatchMadeAgainOnce() {
        // With no grace period the server refuses vouchers for the table it
        // replaced (FAILED_PRECONDITION, storing nothing).
        TestServer(serveArgs = "--grace 0s").use { server ->
            Client(url(server), server.operator).use { client ->
                assertEquals(1L, client.refresh().version)
                server.publish()
                var tries = 0
                while (Client(url(server), server.operator).use { it.refresh().version } != 2L && tries++ < 100) Thread.sleep(100)
                val (type, value) = server.listed("listed-v2.txt").single()
                assertEquals(1, client.check(listOf(item(type, value, "replaced"))))
                assertEquals(2uL, client.manifest!!.version())
            }
            assertEquals(listOf("replaced"), server.matches(1).map { it.second })
            // A second FAILED_PRECONDITION for the same batch is a failure.
            val base = channel(server)
            val refusing = Refusing("Submit", { true }, Status.Code.FAILED_PRECONDITION)
            Client(ClientInterceptors.intercept(base, refusing), server.operator).use { client ->
                val items = listOf(ItemToCheck(ItemType.SHA256, sha256("twice"), ByteArray(0)))
                val e = assertThrows<IncompleteException> { client.check(items) }
                assertEquals(0 to items, e.acknowledged to e.remaining)
                assertEquals(Status.Code.FAILED_PRECONDITION, (e.cause as StatusRuntimeException).status.code)
                assertEquals(2, refusing.calls.get())
            }
            base.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
        }
    }

    @Test
    fun aTableSwappedBeforeItsDownloadStartsTheRefreshOverOnce() {
        TestServer().use { server ->
            val base = channel(server)
            val manifests = Refusing("GetManifest", { false }, Status.Code.OK) // counts only
            val once = Refusing("DownloadTable", { it == 1 }, Status.Code.FAILED_PRECONDITION)
            Client(ClientInterceptors.intercept(base, once, manifests), server.operator).use { client ->
                assertEquals(Refreshed(1, Refreshed.DOWNLOAD), client.refresh())
                assertEquals(2 to 2, manifests.calls.get() to once.calls.get())
            }
            val always = Refusing("DownloadTable", { true }, Status.Code.FAILED_PRECONDITION)
            Client(ClientInterceptors.intercept(base, always), server.operator).use { client ->
                val e = assertThrows<StatusRuntimeException> { client.refresh() }
                assertEquals(Status.Code.FAILED_PRECONDITION, e.status.code)
                assertEquals(2, always.calls.get())
                assertEquals(null, client.manifest)
            }
            base.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
        }
    }

    @Test
    fun aRefusedDeltaSaysWhyAndTheTableIsDownloaded() {
        TestServer().use { server ->
            val cache = scratch()
            Client(url(server), server.operator, cacheDir = cache).use { it.refresh() }
            server.publish()
            val base = channel(server)
            val noDelta = Refusing("DownloadDelta", { true }, Status.Code.NOT_FOUND)
            var refreshed: Refreshed
            var tries = 0
            do {
                refreshed = Client(ClientInterceptors.intercept(base, noDelta), server.operator, cacheDir = cache).use { it.refresh() }
                if (refreshed.version != 2L) Thread.sleep(100)
            } while (refreshed.version != 2L && tries++ < 100)
            assertEquals(Refreshed(2, Refreshed.DOWNLOAD, "NOT_FOUND: refused by the test's interceptor"), refreshed)
            base.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
        }
    }

    @Test
    fun serverUrlsAreAcceptedAndRefusedAsEveryClientDoes() {
        // RFC 8032's first test key: nothing is verified here.
        val key = OperatorKey.fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        val file = File(TestServer.root, "bindings/testkit/urls.txt")
        val cases = file.readLines().filter { it.isNotBlank() && !it.startsWith("#") }.map { line ->
            val parts = line.split(' ', limit = 2)
            assertTrue(parts.size == 2 && parts[0] in setOf("ok", "refuse"), "$file: not `ok URL` or `refuse URL`: $line")
            parts[0] to parts[1].replace("\\s", " ").replace("\\t", "\t")
        }
        assertTrue(cases.count { it.first == "ok" } >= 5 && cases.count { it.first == "refuse" } >= 20, "$file: $cases")
        // Every line is checked; the disagreements are reported together.
        val wrong = cases.mapNotNull { (verdict, url) ->
            val refused = try {
                Client(url, key).close() // channels connect lazily: nothing is dialled
                null
            } catch (e: IllegalArgumentException) {
                e.message!!
            }
            when {
                verdict == "ok" && refused != null -> "accepted in urls.txt, refused: $refused"
                verdict == "refuse" && refused == null -> "refused in urls.txt, accepted: \"$url\""
                // The message names the url and what a server address is.
                refused != null && !(
                    refused.startsWith("url \"$url\": ") &&
                        refused.endsWith("(expected http://HOST[:PORT] or https://HOST[:PORT])")
                    ) -> "not named as every refusal is: $refused"
                else -> null
            }
        }
        assertEquals(emptyList<String>(), wrong)
    }

    @Test
    fun aCrashsTemporaryFilesAreRemovedAndWritesLeaveNone() {
        TestServer().use { server ->
            val cache = scratch()
            val dir = File(cache, server.operator.toHex()).apply { mkdirs() }
            File(dir, ".tmp-crashed").writeBytes(ByteArray(100) { 7 })
            File(dir, "unrelated").writeBytes(ByteArray(1))
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertEquals(listOf("unrelated"), dir.list()!!.toList())
                client.refresh()
            }
            val names = dir.list()!!.sorted()
            assertEquals(listOf("history", "unrelated"), names.filter { !it.startsWith("table-") })
            assertEquals(1, names.count { it.startsWith("table-") })
            assertEquals("rw-------", Files.getPosixFilePermissions(File(dir, "history").toPath()).let {
                java.nio.file.attribute.PosixFilePermissions.toString(it)
            })
        }
    }

    @Test
    fun aLinkInTheCacheIsNeverFollowed() {
        TestServer().use { server ->
            val cache = scratch()
            val id = Client(url(server), server.operator).use { client ->
                client.refresh()
                hex(client.manifest!!.tableId())
            }
            val dir = File(cache, server.operator.toHex()).apply { mkdirs() }
            val (elsewhere, known) = elsewhere()
            // A partial download that is a link: resuming through it would
            // read the file it names, cut it to whole chunks and append
            // after them. The client makes no link: this one is removed
            // (the link alone) and the table downloaded afresh.
            val part = File(dir, "table-$id.part").toPath()
            Files.createSymbolicLink(part, elsewhere.toPath())
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertEquals(Refreshed(1, Refreshed.DOWNLOAD), client.refresh())
            }
            assertFalse(Files.exists(part, LinkOption.NOFOLLOW_LINKS))
            assertArrayEquals(known, elsewhere.readBytes())
            // The same for the saved table.
            val table = File(dir, "table-$id").toPath()
            Files.delete(table)
            Files.createSymbolicLink(table, elsewhere.toPath())
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertEquals(Refreshed(1, Refreshed.DOWNLOAD), client.refresh())
            }
            assertTrue(Files.isRegularFile(table, LinkOption.NOFOLLOW_LINKS))
            assertArrayEquals(known, elsewhere.readBytes())
            // The history is never read through a link either, nor dropped
            // (that would drop its rollback protection): the client is not made.
            val history = File(dir, "history").toPath()
            Files.delete(history)
            Files.createSymbolicLink(history, elsewhere.toPath())
            val e = assertThrows<java.io.IOException> { Client(url(server), server.operator, cacheDir = cache) }
            assertTrue("NOFOLLOW_LINKS" in e.message!!, e.message)
            assertTrue(Files.isSymbolicLink(history))
            assertArrayEquals(known, elsewhere.readBytes())
        }
    }

    @Test
    fun aRefreshRemovesThePartialDownloadsOfOtherTables() {
        TestServer().use { server ->
            val cache = scratch()
            val id = Client(url(server), server.operator, cacheDir = cache).use { client ->
                client.refresh()
                hex(client.manifest!!.tableId())
            }
            val dir = File(cache, server.operator.toHex())
            // Left by downloads of versions replaced before they finished
            // (one a link: removed, not what it names).
            File(dir, "table-${"ab".repeat(32)}.part").writeBytes(ByteArray(4096) { 1 })
            val (elsewhere, known) = elsewhere()
            Files.createSymbolicLink(File(dir, "table-${"cd".repeat(32)}.part").toPath(), elsewhere.toPath())
            // The current table's, and files that are not partial downloads, stay.
            File(dir, "table-$id.part").writeBytes(ByteArray(4096) { 2 })
            File(dir, "unrelated.part").writeBytes(ByteArray(1))
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertEquals(Refreshed(1, Refreshed.CACHED), client.refresh())
            }
            assertEquals(listOf("history", "table-$id", "table-$id.part", "unrelated.part"), dir.list()!!.sorted())
            assertArrayEquals(known, elsewhere.readBytes())
            // A refresh that fails removes nothing.
            File(dir, "table-${"ab".repeat(32)}.part").writeBytes(ByteArray(4096) { 1 })
            server.stop()
            Client(url(server), server.operator, cacheDir = cache, attempts = 1).use { client ->
                assertThrows<StatusRuntimeException> { client.refresh() }
            }
            assertTrue(File(dir, "table-${"ab".repeat(32)}.part").exists())
        }
    }
}
