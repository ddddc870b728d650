package org.blindmatch

import blindmatch.v1.Blindmatch.DownloadDeltaRequest
import blindmatch.v1.Blindmatch.GetManifestRequest
import blindmatch.v1.TableServiceGrpc
import com.google.protobuf.ByteString
import io.grpc.ManagedChannelBuilder
import java.security.MessageDigest
import java.util.concurrent.TimeUnit
import org.blindmatch.example.fetchTable
import org.blindmatch.example.submit
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * The Kotlin binding against a real server: the vouchers it makes are opened
 * by the Rust matcher, listed items are recorded with their associated data
 * and unlisted ones never are, and a delta brings a held table to version 2.
 */
class FlowTest {
    private fun item(type: String, hex: String, ad: String): ItemToCheck {
        val t = ItemType.valueOf(type.uppercase())
        return ItemToCheck(t, itemFromHex(t, hex), ad.toByteArray())
    }

    private fun sha256(s: String): String =
        MessageDigest.getInstance("SHA-256").digest(s.toByteArray()).joinToString("") { "%02x".format(it) }

    @Test
    fun listedItemsAreRecordedWithTheirDataAndUnlistedNever() {
        TestServer().use { server ->
            val channel = ManagedChannelBuilder.forTarget(server.target).usePlaintext().build()
            try {
                val history = History(server.operator)
                val fetched = fetchTable(channel, history)
                assertEquals(1uL, fetched.manifest.version())
                val listed = server.listed()
                val items = listed.mapIndexed { i, (t, v) -> item(t, v, "kt-$i") } +
                    (0 until 70).map { item("sha256", sha256("unlisted-$it"), "no") }
                assertEquals(items.size, submit(channel, fetched.table, items, fetched.maxBatch))
                val want = listed.mapIndexed { i, (_, v) -> v to "kt-$i" }.sortedBy { it.first }
                assertEquals(want, server.matches(listed.size).sortedBy { it.first })

                // Version 2, by a delta from the table held.
                server.publish()
                var version = 1uL
                for (i in 0 until 100) {
                    val r = TableServiceGrpc.newBlockingStub(channel).getManifest(GetManifestRequest.getDefaultInstance())
                    version = r.version.toULong()
                    if (version == 2uL) break
                    Thread.sleep(100)
                }
                assertEquals(2uL, version)
                val r = TableServiceGrpc.newBlockingStub(channel).getManifest(GetManifestRequest.getDefaultInstance())
                val v2 = Manifest.verify(r.statement.toByteArray(), r.signature.toByteArray(), server.operator)
                val delta = DeltaDownload(fetched.table, v2)
                TableServiceGrpc.newBlockingStub(channel).downloadDelta(
                    DownloadDeltaRequest.newBuilder()
                        .setFromTableId(ByteString.copyFrom(fetched.table.tableId()))
                        .setToTableId(ByteString.copyFrom(v2.tableId()))
                        .build(),
                ).forEach { delta.push(it.indices.toByteArray(), it.slots.toByteArray()) }
                val table2 = delta.finish()
                assertArrayEquals(v2.tableId(), table2.tableId())
                assertThrows<BlindmatchException.State> { delta.finish() }
                history.record(history.check(v2))
                val rollback = assertThrows<BlindmatchException.Rollback> { history.check(fetched.manifest) }
                assertEquals(1uL to 2uL, rollback.offered to rollback.seen)
                // The core's words, as every binding shows them.
                assert(rollback.reason.contains("older than version 2 seen before: refused (rollback)"))
                val (t, v) = server.listed("listed-v2.txt").single()
                assertEquals(1, submit(channel, table2, listOf(item(t, v, "kt new in v2")), 64))
                assertEquals(listed.size + 1, server.matches(listed.size + 1).size)
                assert(server.matches(listed.size + 1).contains(v to "kt new in v2"))
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
            }
        }
    }

    /** SPEC 15.6: hotlines a and b audited version 1 and co-signed it; c did not. */
    @Test
    fun aQuorumOfPinnedOrganisationsMustHaveCoSigned() {
        TestServer().use { server ->
            val channel = ManagedChannelBuilder.forTarget(server.target).usePlaintext().build()
            try {
                val org = listOf("a", "b", "c").associateWith {
                    OperatorKey.fromHex(java.io.File(server.dir, "org-$it.sign.pub").readText().trim())
                }
                val r = TableServiceGrpc.newBlockingStub(channel).getManifest(GetManifestRequest.getDefaultInstance())
                val manifest = Manifest.verify(r.statement.toByteArray(), r.signature.toByteArray(), server.operator)
                val cosignatures = r.cosignaturesList.map {
                    CoSignature(it.orgKey.toByteArray(), it.name, it.signature.toByteArray())
                }
                val audited = manifest.requireQuorum(Quorum(listOf(org["a"]!!, org["b"]!!), 2u), cosignatures)
                assertEquals(listOf("Hotline a", "Hotline b"), audited.cosigners())
                val below = assertThrows<BlindmatchException.Quorum> {
                    manifest.requireQuorum(Quorum(org.values.toList(), 3u), cosignatures)
                }
                assertEquals(2uL to 3uL, below.found to below.required)
                assert(below.reason.contains("(Hotline a, Hotline b), 3 required"))
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
            }
        }
    }

    /** SPEC 16.6: the server logs versions 1 and 2 (no witnesses). */
    @Test
    fun theManifestMustBeInTheOperatorsTransparencyLog() {
        TestServer().use { server ->
            val channel = ManagedChannelBuilder.forTarget(server.target).usePlaintext().build()
            try {
                val policy = LogPolicy.parse(java.io.File(server.dir, "log.policy").readText())
                val other = LogPolicy.parse(java.io.File(server.dir, "log-other.policy").readText())
                val history = History(server.operator)
                val r = TableServiceGrpc.newBlockingStub(channel)
                    .getManifest(GetManifestRequest.newBuilder().setLogSize(history.logSize().toLong()).build())
                val manifest = Manifest.verify(r.statement.toByteArray(), r.signature.toByteArray(), server.operator)
                val cosignatures = r.cosignaturesList.map {
                    CoSignature(it.orgKey.toByteArray(), it.name, it.signature.toByteArray())
                }
                val consistency = r.logConsistencyList.map { it.toByteArray() }
                val logged = manifest.requireLogged(policy, r.logProof, consistency, cosignatures)
                assertEquals(2uL, logged.logSize())
                history.record(history.check(logged))
                assertEquals(2uL, history.logSize())
                val refused = assertThrows<BlindmatchException.Log> {
                    manifest.requireLogged(other, r.logProof, consistency, cosignatures)
                }
                assert(refused.reason.contains("no valid signature by the pinned log key"))
                assertThrows<BlindmatchException.Log> { history.check(manifest) }
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
            }
        }
    }
}
