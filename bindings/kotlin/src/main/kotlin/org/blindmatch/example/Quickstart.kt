// The ready client, org.blindmatch.client.Client: check items against a
// blindmatch server in both modes.
//
//   Quickstart URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...
//
// The acknowledgement is the same whether an item matched or not: the app
// learns nothing about the list, and the server only learns the listed items
// (in threshold mode, once an account holds t of them).
package org.blindmatch.example

import java.io.File
import kotlin.system.exitProcess
import org.blindmatch.Account
import org.blindmatch.BlindmatchException
import org.blindmatch.ItemToCheck
import org.blindmatch.ItemType
import org.blindmatch.OperatorKey
import org.blindmatch.Upload
import org.blindmatch.client.Client
import org.blindmatch.itemFromHex

/**
 * Version 1: every listed item is reported to the operator at once. (If the
 * operator moves the list to threshold mode, `check` throws
 * `BlindmatchException.Mode`: uploads then go with an account, [checkUploads].)
 */
fun checkItems(url: String, operatorKey: OperatorKey, cacheDir: File, items: List<ItemToCheck>): Int =
    Client(url, operatorKey, cacheDir = cacheDir).use { client ->
        client.refresh() // verify the manifest, bring the table up to date
        client.check(items) // how many vouchers were acknowledged
    }

/**
 * Threshold mode: the server learns nothing about [account] until it holds
 * t matches. [account] is the account's secret (`Account.generate(id, rate)`
 * once, then kept with its other secrets and restored with `Account.decode`);
 * each upload keeps its voucher id across retries, so it counts once.
 * Threshold.kt chooses the rate and keeps the secret.
 */
fun checkUploads(url: String, operatorKey: OperatorKey, cacheDir: File, account: Account, uploads: List<Upload>): Int =
    Client(url, operatorKey, cacheDir = cacheDir).use { client ->
        client.refresh()
        client.checkAccount(account, uploads)
    }

/** `sha256:HEX[:NOTE]` as an item to check, the note its associated data. */
fun parseItem(text: String): ItemToCheck {
    val parts = text.split(":", limit = 3)
    require(parts.size >= 2) { "expected TYPE:HEX[:NOTE], got \"$text\"" }
    val type = ItemType.valueOf(parts[0].uppercase())
    return ItemToCheck(type, itemFromHex(type, parts[1]), parts.getOrElse(2) { "" }.toByteArray())
}

fun main(args: Array<String>) {
    if (args.size < 3) {
        System.err.println("usage: Quickstart URL OPERATOR_KEY_HEX CACHE_DIR sha256:HEX[:NOTE] ...")
        exitProcess(2)
    }
    val n = try {
        checkItems(args[0], OperatorKey.fromHex(args[1]), File(args[2]), args.drop(3).map(::parseItem))
    } catch (e: BlindmatchException) {
        // A refused table (bad signature, rollback, ...): the table held
        // stays; report it and try again at the next refresh (Refused.kt).
        System.err.println("refused: ${e.message}")
        exitProcess(1)
    }
    println("$n vouchers acknowledged")
}
