package org.blindmatch

import io.grpc.ManagedChannelBuilder
import java.security.MessageDigest
import java.util.concurrent.TimeUnit
import org.blindmatch.example.fetchTable
import org.blindmatch.example.submitForAccount
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Threshold mode through the Kotlin binding, against a real server whose
 * table has t = 3 and s = 2: an account below t leaves candidates and
 * nothing else, one that reaches t has its matches revealed with their
 * associated data, and each mode refuses the other's submission.
 */
class ThresholdTest {
    private fun sha256(s: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(s.toByteArray())

    private fun upload(name: String, type: String, hex: String, ad: String): Upload {
        val t = ItemType.valueOf(type.uppercase())
        return Upload(sha256(name).copyOf(16), t, itemFromHex(t, hex), ad.toByteArray())
    }

    private fun hex(b: ByteArray) = b.joinToString("") { "%02x".format(it) }

    @Test
    fun anAccountRevealsItsMatchesOnlyAtT() {
        TestServer("3:2").use { server ->
            val channel = ManagedChannelBuilder.forTarget(server.target).usePlaintext().build()
            try {
                val fetched = fetchTable(channel, History(server.operator))
                assertEquals(3.toUShort(), fetched.manifest.threshold())
                val listed = server.listed()
                // No synthetic vouchers, so the counts below are exact.
                val below = Account.generate("kt-below".toByteArray(), 0.0)
                val above = Account.decode(Account.generate("kt-above".toByteArray(), 0.0).encode())
                assertArrayEquals("kt-above".toByteArray(), above.accountId())
                val unlisted = (0 until 3).map { upload("u$it", "sha256", hex(sha256("no-$it")), "x") }
                val two = listed.take(2).mapIndexed { i, (t, v) -> upload("b$i", t, v, "below-$i") }
                assertEquals(5, submitForAccount(channel, fetched.table, below, two + unlisted, fetched.maxBatch))
                val four = listed.take(4).mapIndexed { i, (t, v) -> upload("a$i", t, v, "above-$i") }
                // Sent twice: the same voucher ids count once.
                assertEquals(2, submitForAccount(channel, fetched.table, above, four.take(2), fetched.maxBatch))
                assertEquals(4, submitForAccount(channel, fetched.table, above, four, fetched.maxBatch))

                assertEquals((0 until 4).map { "above-$it" }, server.matches(4).map { it.second }.sorted())
                val accounts = server.accounts(2).associateBy { it.hex }
                val belowCounts = accounts.getValue(hex("kt-below".toByteArray()))
                assertEquals(2 to 0, belowCounts.unrevealed to belowCounts.real)
                assertEquals(2, belowCounts.total) // the unlisted uploads made none
                // Four candidates in all, not six: the two sent twice were
                // stored once (all four revealed, so both submissions are in).
                val aboveCounts = accounts.getValue(hex("kt-above".toByteArray()))
                assertEquals(4, aboveCounts.real)
                assertEquals(4, aboveCounts.total)

                // Each mode refuses the other's submission; bad input is named.
                assertThrows<BlindmatchException.Mode> {
                    fetched.table.submission(listOf(ItemToCheck(ItemType.SHA256, ByteArray(32), ByteArray(0))))
                }
                assertThrows<BlindmatchException.Input> {
                    fetched.table.accountSubmission(above, listOf(Upload(ByteArray(15), ItemType.SHA256, ByteArray(32), ByteArray(0))))
                }
                val damaged = above.encode()
                damaged[0] = (damaged[0].toInt() xor 1).toByte()
                assertThrows<BlindmatchException.Account> { Account.decode(damaged) }
            } finally {
                channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS)
            }
        }
    }
}
