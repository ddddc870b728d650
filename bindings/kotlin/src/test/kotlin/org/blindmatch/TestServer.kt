package org.blindmatch

import java.io.File
import java.nio.file.Files

/**
 * A real server from bindings/testkit/server.sh, in a scratch directory.
 * [threshold] is "T:S" for a table in threshold mode; [serveArgs] more of
 * `serve`'s flags (as one string).
 */
class TestServer(private val threshold: String = "", private val serveArgs: String = "") : AutoCloseable {
    val root = TestServer.root
    private val script = File(root, "bindings/testkit/server.sh").path
    val dir: File = Files.createTempDirectory("blindmatch-kotlin").toFile()

    init {
        run("start")
    }

    val target: String = File(dir, "url").readText().trim().removePrefix("http://")
    val operator: OperatorKey = OperatorKey.fromHex(File(dir, "operator.sign.pub").readText().trim())

    /** The listed test items, as (type, hex). */
    fun listed(name: String = "listed.txt"): List<Pair<String, String>> =
        File(dir, name).readLines().filter { it.isNotBlank() }.map {
            val (t, v) = it.split(" ")
            t to v
        }

    fun publish() = run("publish")

    /** The recorded matches as (item_hex, associated_data), once [n] are in. */
    fun matches(n: Int): List<Pair<String, String>> {
        val json = run("matches", n.toString())
        val hex = Regex("\"item_hex\": \"([0-9a-f]+)\"").findAll(json).map { it.groupValues[1] }.toList()
        val ad = Regex("\"associated_data\": \"([^\"]*)\"").findAll(json).map { it.groupValues[1] }.toList()
        check(hex.size == ad.size) { "unexpected matches output: $json" }
        return hex.zip(ad)
    }

    /**
     * An account's candidates by state (`matches --accounts --json`, README):
     * [total] is how many the server stored, one per distinct upload that
     * made one (SPEC 14.9: a resubmitted upload is not stored again).
     */
    data class Candidates(val hex: String, val unrevealed: Int, val real: Int, val synthetic: Int, val rejected: Int) {
        val total get() = unrevealed + real + synthetic + rejected
    }

    /** The accounts with candidates, once [n] are in. */
    fun accounts(n: Int): List<Candidates> {
        val json = run("accounts", n.toString())
        val field = { name: String -> Regex("\"$name\": \"?([0-9a-f]+)\"?").findAll(json).map { it.groupValues[1] }.toList() }
        val ids = field("account_hex")
        val counts = listOf("unrevealed", "real", "synthetic", "rejected").map { name -> field(name).map { it.toInt() } }
        check(counts.all { it.size == ids.size }) { "unexpected accounts output: $json" }
        return ids.indices.map { Candidates(ids[it], counts[0][it], counts[1][it], counts[2][it], counts[3][it]) }
    }

    private fun run(vararg args: String): String {
        val builder = ProcessBuilder(listOf(script, args[0], dir.path) + args.drop(1))
            .redirectError(ProcessBuilder.Redirect.INHERIT)
        builder.environment()["BLINDMATCH_THRESHOLD"] = threshold
        builder.environment()["BLINDMATCH_SERVE_ARGS"] = serveArgs
        val p = builder.start()
        val out = p.inputStream.bufferedReader().readText()
        check(p.waitFor() == 0) { "server.sh ${args.joinToString(" ")} failed" }
        return out
    }

    /** Stops the server (SIGTERM, then SIGKILL); [close] after it does nothing more. */
    fun stop() = run("stop")

    override fun close() {
        run("stop")
    }

    companion object {
        /** The repository's root (the pom passes it): bindings/testkit is under it. */
        val root: File = File(System.getProperty("blindmatch.root")).canonicalFile
    }
}
