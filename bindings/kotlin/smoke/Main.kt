// Smoke test of the generated Kotlin bindings on the JVM (JNA), against the reference
// server: the built-in transport, an app transport on HttpURLConnection, a listener,
// a provider, a listener that throws, typed exceptions. Run by ./run.
import java.net.HttpURLConnection
import java.net.Proxy
import java.net.URI
import java.util.concurrent.CopyOnWriteArrayList
import uniffi.authsync.*

val server: String = System.getenv("AUTHSYNC_TEST_SERVER") ?: error("AUTHSYNC_TEST_SERVER is not set")
var passed = 0

fun check(condition: Boolean, what: String) {
    if (!condition) {
        System.err.println("FAIL: $what")
        kotlin.system.exitProcess(1)
    }
    println("ok: $what")
    passed++
}

fun admin(method: String, route: String, body: String? = null): String {
    val connection = URI("$server/admin/$route").toURL().openConnection(Proxy.NO_PROXY) as HttpURLConnection
    connection.requestMethod = method
    if (body != null) {
        connection.doOutput = true
        connection.setRequestProperty("Content-Type", "application/json")
        connection.outputStream.use { it.write(body.toByteArray()) }
    }
    return connection.inputStream.use { String(it.readAllBytes()) }
}

// No JSON library on this classpath: the admin answers are small and regular.
fun mint(sub: String): String =
    Regex("\"token\":\"([^\"]+)\"").find(admin("POST", "mint", "{\"sub\":\"$sub\"}"))!!.groupValues[1]

fun accepted(app: String): Int =
    Regex("\"${Regex.escape(app)}\":(\\d+)").find(admin("GET", "stats"))?.groupValues?.get(1)?.toInt() ?: 0

class UrlConnectionTransport : Transport {
    val statuses = CopyOnWriteArrayList<Int>()

    override fun send(request: HttpRequest): HttpResponse {
        try {
            val connection = URI(request.url).toURL().openConnection(Proxy.NO_PROXY) as HttpURLConnection
            connection.requestMethod = request.method
            connection.instanceFollowRedirects = false
            connection.doOutput = true
            request.headers.forEach { (name, value) -> connection.setRequestProperty(name, value) }
            connection.outputStream.use { it.write(request.body) }
            val status = connection.responseCode
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val body = stream?.use { it.readAllBytes() } ?: ByteArray(0)
            val headers = connection.headerFields
                .filterKeys { it != null }
                .mapValues { it.value.joinToString(", ") }
            statuses.add(status)
            return HttpResponse(status.toUShort(), headers, body)
        } catch (e: java.net.ConnectException) {
            throw TransportException.Connect(e.toString())
        } catch (e: java.net.SocketTimeoutException) {
            throw TransportException.Timeout(e.toString())
        } catch (e: java.io.IOException) {
            throw TransportException.Reset(e.toString())
        }
    }
}

class RecordingListener : AuthenticationListener {
    val codes = CopyOnWriteArrayList<String>()
    val threads = CopyOnWriteArrayList<String>()

    override fun onAuthenticationError(notice: AuthNotice) {
        codes.add(notice.code)
        threads.add(Thread.currentThread().name)
    }
}

class ThrowingListener : AuthenticationListener {
    override fun onAuthenticationError(notice: AuthNotice): Unit = throw IllegalStateException("a buggy listener")
}

class MintingProvider : TokenProvider {
    val asked = CopyOnWriteArrayList<String>()

    override fun fetchToken(request: TokenRequest): String? {
        asked.add("${request.identifier}:${request.code}")
        return mint(request.identifier)
    }
}

fun config(app: String, jwt: Boolean = true) =
    ClientConfig(appId = app, endpoint = server, environment = Environment.TEST, jwtEnabled = jwt)

fun main() {
    val run = System.nanoTime().toString(36)

    // The built-in transport, anonymous events.
    val anonymousApp = "kt-anon-$run"
    AuthsyncClient(config(anonymousApp)).use { client ->
        client.track("app_open", "{\"n\": 1}")
        client.track("app_open")
        val report = client.flushAndWait(10_000uL)
        check(report.pendingEvents == 0uL && accepted(anonymousApp) == 2, "anonymous events delivered by the built-in transport")
    }

    // The app's transport; a 401, the listener, the provider, delivery.
    val app = "kt-jwt-$run"
    val transport = UrlConnectionTransport()
    val listener = RecordingListener()
    val provider = MintingProvider()
    val client = AuthsyncClient(config(app), ThrowingListener(), provider, transport)
    client.registerAuthenticationListener(listener)
    check(client.identify("user-k") is Outcome.Applied, "identify")
    client.passAuthenticationDetails(mint("user-k"), "user-k")
    client.track("purchase", "{\"sku\": \"A1\"}")
    admin("POST", "faults", "[{\"kind\": \"jwt_401\", \"code\": \"INVALID_SIGNATURE\"}]")
    val report = client.flushAndWait(10_000uL)
    check(report.pendingEvents == 0uL && accepted(app) == 1, "delivered after a 401 through the app's transport")
    check(transport.statuses == listOf(401, 200), "the transport saw ${transport.statuses}")
    check(listener.codes == listOf("INVALID_SIGNATURE"), "the listener heard ${listener.codes} despite a throwing one")
    check("main" !in listener.threads, "listeners run on the client's thread (${listener.threads})")
    check(provider.asked == listOf("user-k:INVALID_SIGNATURE"), "the provider was asked ${provider.asked}")

    // Typed exceptions.
    try {
        client.track("", "{}")
        check(false, "an empty event name is refused")
    } catch (e: AuthsyncException.InvalidEvent) {
        check(e.reason.contains("must not be empty"), "InvalidEvent: ${e.message()}")
    }
    try {
        client.passAuthenticationDetails("not-a-jwt", "user-k")
        check(false, "a malformed token is refused")
    } catch (e: AuthsyncException.InvalidToken) {
        check(true, "InvalidToken: ${e.message()}")
    }

    // close(timeoutMs) closes and keeps the getters; close() (AutoCloseable) frees it.
    client.close(5_000uL)
    try {
        client.track("late")
        check(false, "a closed client refuses inputs")
    } catch (e: AuthsyncException.ShutDown) {
        check(client.totals().acked == 1uL, "ShutDown after close(timeoutMs); totals still answer")
    }
    client.close()
    println("$passed passed, 0 failed")
}
