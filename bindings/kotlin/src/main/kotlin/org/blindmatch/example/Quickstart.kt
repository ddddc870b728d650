// The ready client, org.blindmatch.client.Client: check items against a
// blindmatch server in both modes.
//
// The acknowledgement is the same whether an item matched or not: the app
// learns nothing about the list, and the server only learns the listed items
// (in threshold mode, once an account holds t of them).
package org.blindmatch.example

import java.io.File
import org.blindmatch.Account
import org.blindmatch.ItemToCheck
import org.blindmatch.OperatorKey
import org.blindmatch.Upload
import org.blindmatch.client.Client

/** Version 1: every listed item is reported to the operator at once. */
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
 */
fun checkUploads(url: String, operatorKey: OperatorKey, cacheDir: File, account: Account, uploads: List<Upload>): Int =
    Client(url, operatorKey, cacheDir = cacheDir).use { client ->
        client.refresh()
        client.checkAccount(account, uploads)
    }
