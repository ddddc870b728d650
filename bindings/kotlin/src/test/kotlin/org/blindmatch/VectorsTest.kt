package org.blindmatch

import java.io.File
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * What the Kotlin binding reproduces of protocol/vectors/blindmatch-v1.json,
 * and how it refuses bad input: a typed exception, never a crash.
 */
class VectorsTest {
    private val json = File(System.getProperty("blindmatch.root"), "protocol/vectors/blindmatch-v1.json").readText()

    private fun hex(s: String): ByteArray = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

    /** Where `after` first appears (past `within`, when given). */
    private fun at(after: String, within: String = ""): Int =
        if (after.isEmpty()) 0 else json.indexOf(after, if (within.isEmpty()) 0 else json.indexOf(within))

    /** The string value of the first `"key": "..."` after `after`. */
    private fun field(key: String, after: String = "", within: String = ""): String =
        Regex("\"$key\": \"([^\"]*)\"").find(json, at(after, within))!!.groupValues[1]

    private fun number(key: String, after: String, within: String = ""): Long =
        Regex("\"$key\": ([0-9]+)").find(json, at(after, within))!!.groupValues[1].toLong()

    // The lifecycle's manifest (version 2 of the table), not the chunked
    // table's, which comes first in the file.
    private val lifecycle = "\"lifecycle\""

    private val operator = OperatorKey.fromHex(field("verifying_key", "\"manifest\"", lifecycle))
    private val manifest = Manifest.verify(
        hex(field("statement", "\"manifest\"", lifecycle)),
        hex(field("signature", "\"manifest\"", lifecycle)),
        operator,
    )

    /** The vectors' version-1 table: header and its 16 slots. */
    private fun v1(): ByteArray {
        val table = json.substring(json.indexOf("\"table\": {"))
        val slots = table.substring(table.indexOf("\"slots\": ["), table.indexOf("]", table.indexOf("\"slots\": [")))
        val all = Regex("\"([0-9a-f]{64})\"").findAll(slots).map { hex(it.groupValues[1]) }.toList()
        assertEquals(16, all.size)
        return hex(field("header", "\"table\": {")) + all.reduce { a, b -> a + b }
    }

    @Test
    fun manifestSignatureAndStatement() {
        assertEquals(2uL, manifest.version())
        assertEquals(number("created", "\"manifest\"", lifecycle).toULong(), manifest.created())
        assertArrayEquals(hex(field("table_id", "\"update\"")), manifest.tableId())
        assertArrayEquals(hex(field("digest", "\"update\"")), manifest.digest())
        val tampered = manifest.statement().also { it[12] = (it[12].toInt() xor 1).toByte() }
        assertThrows<BlindmatchException.BadSignature> { Manifest.verify(tampered, manifest.signature(), operator) }
        val other = OperatorKey.fromHex("58" + "66".repeat(31))
        assertThrows<BlindmatchException.BadSignature> { Manifest.verify(manifest.statement(), manifest.signature(), other) }
    }

    @Test
    fun tableIdAndDeltaToVersion2() {
        val encoded = v1()
        assertArrayEquals(hex(field("table_id", "\"table\": {")), tableIdOf(encoded))
        val held = Table.openUnverified(encoded)
        val delta = DeltaDownload(held, manifest)
        val changes = json.substring(json.indexOf("\"delta\": ["))
        val slots = Regex("\"slot\": ([0-9]+)").findAll(changes.substring(0, changes.indexOf("\"digest\""))).map { it.groupValues[1].toInt() }.toList()
        val afters = Regex("\"after\": \"([0-9a-f]+)\"").findAll(changes).map { hex(it.groupValues[1]) }.take(slots.size).toList()
        for ((slot, after) in slots.zip(afters)) {
            delta.push(byteArrayOf((slot ushr 24).toByte(), (slot ushr 16).toByte(), (slot ushr 8).toByte(), slot.toByte()), after)
        }
        val v2 = delta.finish()
        assertArrayEquals(manifest.tableId(), v2.tableId())
        assertArrayEquals(v2.tableId(), Table.open(v2.encode(), manifest).tableId())
    }

    @Test
    fun badInputThrowsTypedExceptions() {
        assertThrows<BlindmatchException.Input> { OperatorKey.fromHex("not hex") }
        assertThrows<BlindmatchException.Input> { itemFromHex(ItemType.SHA256, "ab".repeat(31)) }
        assertThrows<BlindmatchException.History> { History.restore(operator, ByteArray(40) { 1 }) }
        val table = Table.openUnverified(v1())
        assertThrows<BlindmatchException.Input> {
            table.submission(listOf(ItemToCheck(ItemType.MD5, ByteArray(16), ByteArray(1025))))
        }
        val ok = table.submission(listOf(ItemToCheck(ItemType.BYTES, byteArrayOf(1), ByteArray(1024))))
        assertEquals(table.voucherLen().toInt(), ok.vouchers.single().size)
        val download = TableDownload(manifest)
        assertThrows<BlindmatchException.Invalid> { download.push(0uL, ByteArray(32 * 16), listOf()) }
        assertThrows<BlindmatchException.Malformed> { download.push(0uL, ByteArray(32 * 16), listOf(ByteArray(31))) }
        assertEquals(0uL, download.offset())
        assertThrows<BlindmatchException.Invalid> { download.finish() }
        assertThrows<BlindmatchException.State> { download.offset() }
    }
}
