// What an app does when the server offers a table it must refuse: a
// signature that does not verify under the pinned key, an older version
// than one seen before (a rollback), another table under a version seen
// before (equivocation), too few co-signers, a table missing from the log.
//
//   Refused URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...
//
// The rule: never check against a table that did not verify. Keep the one
// held (it verified), tell someone, and try again at the next refresh.
// A process that starts with a refused table holds no verified table until
// a refresh succeeds, so it checks nothing until then (a table in the cache
// directory is taken only for a manifest that verified, in this process);
// it never falls back to an unverified table.
// Every kind and what to do: bindings/ERRORS.md. Uses parseItem from
// Quickstart.kt, next to it.
package org.blindmatch.example

import java.io.File
import kotlin.system.exitProcess
import org.blindmatch.BlindmatchException
import org.blindmatch.OperatorKey
import org.blindmatch.client.Client

/**
 * Refreshes; on a refused table keeps the one held, if any. Returns whether
 * the client holds a verified table to check against. Transient failures
 * (a StatusRuntimeException) are not refusals and are thrown.
 */
fun refreshOrKeep(client: Client): Boolean {
    try {
        client.refresh()
    } catch (e: BlindmatchException) {
        val refused = when (e) {
            is BlindmatchException.BadSignature -> e.reason
            is BlindmatchException.Rollback -> e.reason
            is BlindmatchException.Equivocation -> e.reason
            is BlindmatchException.Quorum -> e.reason
            is BlindmatchException.Log -> e.reason
            is BlindmatchException.TooOld -> e.reason
            else -> throw e // not a refusal of the table: a bug or a broken cache
        }
        // An alert for the app's operators: the kind and the message (it
        // never carries an item or a key).
        System.err.println("refused a table (${e::class.simpleName}): $refused")
    }
    return client.manifest != null
}

fun main(args: Array<String>) {
    if (args.size < 3) {
        System.err.println("usage: Refused URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...")
        exitProcess(2)
    }
    val code = Client(args[0], OperatorKey.fromHex(args[1]), cacheDir = File(args[2])).use { client ->
        if (!refreshOrKeep(client)) {
            // Nothing verified held (refused since the process started):
            // nothing is checked, nothing is sent, until a refresh succeeds.
            println("no verified table: uploads are not checked until one verifies")
            3
        } else {
            println("${client.check(args.drop(3).map(::parseItem))} vouchers acknowledged")
            0
        }
    }
    exitProcess(code)
}
