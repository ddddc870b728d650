package org.example

import org.blindmatch.BlindmatchException
import org.blindmatch.OperatorKey

fun main() {
    // A call into the native library: a key that is not hex is refused
    // with the core's message.
    try {
        OperatorKey.fromHex("not a key")
        error("scratch: a key that is not hex was accepted")
    } catch (e: BlindmatchException.Input) {
        check(e.reason.isNotEmpty()) { "scratch: an empty message" }
        println("scratch: org.blindmatch loaded from the jar; a bad key refused: ${e.reason}")
    }
}
