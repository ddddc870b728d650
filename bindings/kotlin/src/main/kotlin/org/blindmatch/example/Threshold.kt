// Threshold mode with the ready client: the server learns nothing about an
// account until it holds t matches (SPEC Section 14).
//
//   Threshold URL OPERATOR_KEY_HEX CACHE_DIR ACCOUNT_FILE MAX_UPLOADS sha256:HEX[:NOTE] ...
//
// ACCOUNT_FILE keeps the account's secret (made on the first run, mode 0600;
// an app keeps it with the account's other secrets, the Android Keystore for
// instance, the same on each of its devices). MAX_UPLOADS is the most
// uploads the app expects an account to send under one threshold: the
// synthetic rate is chosen from it and the table's synthetic bound s.
package org.blindmatch.example

import java.io.File
import java.nio.file.FileAlreadyExistsException
import java.nio.file.Files
import java.nio.file.StandardOpenOption
import java.nio.file.attribute.PosixFilePermissions
import java.security.MessageDigest
import kotlin.system.exitProcess
import org.blindmatch.Account
import org.blindmatch.ItemType
import org.blindmatch.Manifest
import org.blindmatch.OperatorKey
import org.blindmatch.Upload
import org.blindmatch.client.Client
import org.blindmatch.client.IncompleteException
import org.blindmatch.itemFromHex

/**
 * At most s / 2N (README, "Choosing the synthetic rate"): an account's
 * synthetic vouchers stay near half the bound s, within which t real
 * matches are always detected; a higher rate hides better how many matches
 * an account holds below t. Null for a table in version 1.
 */
fun syntheticRate(manifest: Manifest, maxUploads: Int): Double? {
    val s = manifest.syntheticBound() ?: return null
    return minOf(1.0, s.toDouble() / (2.0 * maxUploads))
}

/** The account's secret: restored if saved, else made with [rate] and saved (mode 0600). */
fun loadAccount(file: File, accountId: ByteArray, rate: Double): Account {
    if (file.exists()) return Account.decode(file.readBytes())
    val account = Account.generate(accountId, rate)
    val ownerOnly = PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"))
    try {
        Files.newByteChannel(file.toPath(), setOf(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), ownerOnly)
            .use { it.write(java.nio.ByteBuffer.wrap(account.encode())) }
    } catch (e: FileAlreadyExistsException) {
        return Account.decode(file.readBytes()) // another run made it first
    }
    return account
}

/**
 * `sha256:HEX[:NOTE]` as an upload. Its 16-byte voucher id names the upload,
 * so a retry or a restart counts it once: an app derives it from its own
 * name for the upload (here: the argument and its place).
 */
fun parseUpload(text: String, index: Int): Upload {
    val parts = text.split(":", limit = 3)
    require(parts.size >= 2) { "expected TYPE:HEX[:NOTE], got \"$text\"" }
    val type = ItemType.valueOf(parts[0].uppercase())
    val voucherId = MessageDigest.getInstance("SHA-256").digest("$index:$text".toByteArray()).copyOf(16)
    return Upload(voucherId, type, itemFromHex(type, parts[1]), parts.getOrElse(2) { "" }.toByteArray())
}

fun main(args: Array<String>) {
    if (args.size < 5) {
        System.err.println("usage: Threshold URL OPERATOR_KEY_HEX CACHE_DIR ACCOUNT_FILE MAX_UPLOADS sha256:HEX[:NOTE] ...")
        exitProcess(2)
    }
    val (url, key, cache, accountFile, maxUploads) = args
    Client(url, OperatorKey.fromHex(key), cacheDir = File(cache)).use { client ->
        client.refresh()
        val manifest = client.manifest!!
        val rate = syntheticRate(manifest, maxUploads.toInt()) ?: run {
            System.err.println("this table is in version 1: use Quickstart.kt")
            exitProcess(1)
        }
        val account = loadAccount(File(accountFile), "account-1".toByteArray(), rate)
        val uploads = args.drop(5).mapIndexed { i, text -> parseUpload(text, i) }
        val n = try {
            client.checkAccount(account, uploads)
        } catch (e: IncompleteException) {
            // Some batches were stored: submit only the rest (same ids).
            e.acknowledged + client.checkAccount(account, e.remainingUploads)
        }
        println("t = ${manifest.threshold()}, s = ${manifest.syntheticBound()}: $n vouchers acknowledged")
    }
}
