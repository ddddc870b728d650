package org.blindmatch

import io.grpc.CallOptions
import io.grpc.Channel
import io.grpc.ClientCall
import io.grpc.ClientInterceptor
import io.grpc.ClientInterceptors
import io.grpc.Grpc
import io.grpc.InsecureChannelCredentials
import io.grpc.ManagedChannel
import io.grpc.Metadata
import io.grpc.MethodDescriptor
import io.grpc.Status
import io.grpc.StatusRuntimeException
import java.io.File
import java.nio.file.Files
import java.security.MessageDigest
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import org.blindmatch.client.Client
import org.blindmatch.client.IncompleteException
import org.blindmatch.client.Refreshed
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
 * delta says why; server urls are parsed strictly; an app's channel (with
 * its interceptors) is used as given; a crash's temporary files are
 * removed.
 */
class ClientFailuresTest {
    private fun sha256(s: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(s.toByteArray())

    private fun item(type: String, hex: String, ad: String): ItemToCheck {
        val t = ItemType.valueOf(type.uppercase())
        return ItemToCheck(t, itemFromHex(t, hex), ad.toByteArray())
    }

    private fun scratch(): File = Files.createTempDirectory("blindmatch-client").toFile()

    private fun url(server: TestServer) = "http://" + server.target

    private fun channel(server: TestServer): ManagedChannel =
        Grpc.newChannelBuilder(server.target, InsecureChannelCredentials.create()).build()

    /** Fails the calls of [method] numbered in [failing] (from 1) with [code], before they reach the server. */
    private class Refusing(private val method: String, private val failing: (Int) -> Boolean, private val code: Status.Code) :
        ClientInterceptor {
        val calls = AtomicInteger()

        override fun <Q, R> interceptCall(descriptor: MethodDescriptor<Q, R>, options: CallOptions, next: Channel): ClientCall<Q, R> {
            if (descriptor.bareMethodName != method || !failing(calls.incrementAndGet())) return next.newCall(descriptor, options)
            return object : ClientCall<Q, R>() {
                override fun start(listener: Listener<R>, headers: Metadata) =
                    listener.onClose(Status.fromCode(code).withDescription("refused by the test's interceptor"), Metadata())

                override fun request(numMessages: Int) {}

                override fun cancel(message: String?, cause: Throwable?) {}

                override fun halfClose() {}

                override fun sendMessage(message: Q) {}
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
                assertTrue(e.message!!.startsWith("64 of ${items.size} acknowledged; the rest failed: "), e.message)
                assertTrue("refused by the test's interceptor" in e.message!!, e.message)
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
                assertTrue(e.message!!.startsWith("0 of 3 acknowledged; the rest failed: UNAVAILABLE"), e.message)
            }
            // No table yet: the refresh check makes first fails as itself.
            Client(url(server), server.operator, attempts = 1).use { client ->
                val e = assertThrows<StatusRuntimeException> { client.check(items) }
                assertEquals(Status.Code.UNAVAILABLE, e.status.code)
            }
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
    fun aUrlThatIsNotAServerAddressIsRefusedNamingWhy() {
        // RFC 8032's first test key: nothing is verified here.
        val key = OperatorKey.fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        val refused = listOf(
            "127.0.0.1:5000" to "the scheme must be http or https",
            "grpc://127.0.0.1:5000" to "the scheme must be http or https",
            "http://127.0.0.1:5000/" to "no path",
            "http://127.0.0.1:5000/v1" to "no path",
            "http://127.0.0.1:5000?x=1" to "no path, query",
            "http://127.0.0.1:5000#top" to "or fragment",
            "http://user@127.0.0.1:5000" to "no user info",
            "http://:5000" to "no host",
            "http://" to "no host",
            "http://127.0.0.1:0" to "from 1 to 65535",
            "http://127.0.0.1:65536" to "from 1 to 65535",
            "http://127.0.0.1:port" to "from 1 to 65535",
            "http://127.0.0.1:" to "from 1 to 65535",
            "http://[::1]x" to "from 1 to 65535",
            "http://exa_mple.org:1" to "not a host name",
            "http://[nothost]:1" to "not an IPv6 address",
            "http://[::1:1" to "unclosed [",
        )
        for ((url, why) in refused) {
            val e = assertThrows<IllegalArgumentException>(url) { Client(url, key) }
            assertTrue(e.message!!.startsWith("url \"$url\": "), e.message)
            assertTrue(why in e.message!!, e.message)
            assertTrue(e.message!!.endsWith("(expected http://HOST[:PORT] or https://HOST[:PORT])"), e.message)
        }
        // Channels connect lazily: these are made and closed.
        for (url in listOf("http://[::1]:1", "https://list.example.org", "http://localhost:80", "https://192.0.2.1:8443")) {
            Client(url, key).close()
        }
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
    fun aPartialDownloadIsNeverAppendedThroughALink() {
        TestServer().use { server ->
            val cache = scratch()
            val id = Client(url(server), server.operator).use { client ->
                client.refresh()
                client.manifest!!.tableId().joinToString("") { "%02x".format(it) }
            }
            val dir = File(cache, server.operator.toHex()).apply { mkdirs() }
            val elsewhere = File(scratch(), "elsewhere").apply { writeBytes(ByteArray(0)) }
            Files.createSymbolicLink(File(dir, "table-$id.part").toPath(), elsewhere.toPath())
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                val e = assertThrows<java.io.IOException> { client.refresh() }
                assertTrue("NOFOLLOW_LINKS" in e.message!!, e.message)
            }
            assertEquals(0L, elsewhere.length())
        }
    }
}
