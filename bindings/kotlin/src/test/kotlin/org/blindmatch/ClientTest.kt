package org.blindmatch

import java.io.File
import java.nio.file.Files
import java.security.MessageDigest
import org.blindmatch.client.Client
import org.blindmatch.client.Refreshed
import org.blindmatch.example.checkItems
import org.blindmatch.example.checkUploads
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * org.blindmatch.client.Client, the ready client over grpc-java, against a
 * real server: a download into the cache, the cache on the next start, a
 * delta to version 2, the quorum and the log refusing as the core does, a
 * damaged partial download dropped, and the quickstart in both modes.
 */
class ClientTest {
    private fun sha256(s: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(s.toByteArray())

    private fun item(type: String, hex: String, ad: String): ItemToCheck {
        val t = ItemType.valueOf(type.uppercase())
        return ItemToCheck(t, itemFromHex(t, hex), ad.toByteArray())
    }

    private fun scratch(): File = Files.createTempDirectory("blindmatch-client").toFile()

    private fun org(server: TestServer, n: String) =
        OperatorKey.fromHex(File(server.dir, "org-$n.sign.pub").readText().trim())

    private fun url(server: TestServer) = "http://" + server.target

    @Test
    fun checkRecordsTheListedItemsThenTheCacheThenADelta() {
        TestServer().use { server ->
            val cache = scratch()
            val listed = server.listed()
            val items = listed.mapIndexed { i, (t, v) -> item(t, v, "client-$i") } +
                (0 until 70).map { ItemToCheck(ItemType.SHA256, sha256("no-$it"), ByteArray(0)) }
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertEquals(Refreshed(1, Refreshed.DOWNLOAD), client.refresh())
                assertEquals(items.size, client.check(items)) // more than one batch of 64
                assertEquals(Refreshed.HELD, client.refresh().how)
            }
            val got = server.matches(listed.size).sortedBy { it.first }
            val want = listed.mapIndexed { i, (_, v) -> v to "client-$i" }.sortedBy { it.first }
            assertEquals(want, got)
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertEquals(Refreshed(1, Refreshed.CACHED), client.refresh())
                server.publish()
                var r = client.refresh()
                var tries = 0
                while (r.version != 2L && tries++ < 100) { // until the server has swapped
                    Thread.sleep(100)
                    r = client.refresh()
                }
                assertEquals(Refreshed(2, Refreshed.DELTA), r)
            }
            val tables = File(cache, server.operator.toHex()).list()!!.filter { it.startsWith("table-") }
            assertEquals(1, tables.size)
        }
    }

    @Test
    fun theQuorumTheLogAndTheKeyRefuseAsTheCoreDoes() {
        TestServer().use { server ->
            Client(url(server), server.operator, quorum = Quorum(listOf(org(server, "a"), org(server, "b"), org(server, "c")), 3u)).use { client ->
                val e = assertThrows<BlindmatchException.Quorum> { client.refresh() }
                assertEquals(2uL to 3uL, e.found to e.required)
                assertEquals(null, client.manifest)
            }
            val logged = LogPolicy.parse(File(server.dir, "log.policy").readText())
            Client(url(server), server.operator, quorum = Quorum(listOf(org(server, "a"), org(server, "b")), 2u), logPolicy = logged).use { client ->
                client.refresh()
                assertEquals(listOf("Hotline a", "Hotline b"), client.manifest!!.cosigners())
            }
            val other = LogPolicy.parse(File(server.dir, "log-other.policy").readText())
            Client(url(server), server.operator, logPolicy = other).use { client ->
                assertThrows<BlindmatchException.Log> { client.refresh() }
            }
            Client(url(server), org(server, "a")).use { client ->
                val e = assertThrows<BlindmatchException.BadSignature> { client.refresh() }
                assertEquals("manifest signature does not verify under the pinned operator key", e.reason)
            }
            assertThrows<IllegalArgumentException> { Client(server.target, server.operator) }
        }
    }

    @Test
    fun aDamagedPartialDownloadIsDroppedAndTheQuickstartRuns() {
        TestServer().use { server ->
            val cache = scratch()
            val id = Client(url(server), server.operator, cacheDir = cache).use { client ->
                client.refresh()
                client.manifest!!.tableId().joinToString("") { "%02x".format(it) }
            }
            val dir = File(cache, server.operator.toHex())
            dir.listFiles()!!.filter { it.name.startsWith("table-") }.forEach { it.delete() }
            File(dir, "table-$id.part").writeBytes(ByteArray(32 * 4096) { 1 })
            Client(url(server), server.operator, cacheDir = cache).use { client ->
                assertThrows<BlindmatchException.Invalid> { client.refresh() }
                assertFalse(File(dir, "table-$id.part").exists())
                assertEquals(Refreshed.DOWNLOAD, client.refresh().how)
            }
            val (type, value) = server.listed()[0]
            val items = listOf(item(type, value, "quickstart-kt"), ItemToCheck(ItemType.SHA256, sha256("x"), ByteArray(0)))
            assertEquals(2, checkItems(url(server), server.operator, scratch(), items))
            assertTrue(server.matches(1).contains(value to "quickstart-kt"))
        }
        TestServer("3:2").use { server ->
            val account = Account.generate("kt-client".toByteArray(), 0.0)
            val uploads = server.listed().take(3).mapIndexed { i, (type, value) ->
                val t = ItemType.valueOf(type.uppercase())
                Upload(sha256("client-$i").copyOf(16), t, itemFromHex(t, value), "client-$i".toByteArray())
            }
            assertEquals(3, checkUploads(url(server), server.operator, scratch(), account, uploads))
            val hex = "kt-client".toByteArray().joinToString("") { "%02x".format(it) }
            // Until the account's candidates are revealed.
            var mine = server.accounts(1).single { it.hex == hex }
            var tries = 0
            while (mine.real != 3 && tries++ < 100) {
                Thread.sleep(200)
                mine = server.accounts(1).single { it.hex == hex }
            }
            assertEquals(3 to 0, mine.real to mine.unrevealed)
        }
    }

    @Test
    fun afterARestartTheCachedTableIsTheDeltaBaseAndOneVersionIsKept() {
        TestServer().use { server ->
            val cache = scratch()
            Client(url(server), server.operator, cacheDir = cache).use { assertEquals(Refreshed.DOWNLOAD, it.refresh().how) }
            server.publish()
            var r = Client(url(server), server.operator, cacheDir = cache).use { it.refresh() }
            var tries = 0
            while (r.version != 2L && tries++ < 100) { // until the server has swapped
                Thread.sleep(100)
                r = Client(url(server), server.operator, cacheDir = cache).use { it.refresh() }
            }
            assertEquals(Refreshed(2, Refreshed.DELTA), r)
            assertEquals(1, File(cache, server.operator.toHex()).list()!!.count { it.startsWith("table-") })
        }
    }
}
