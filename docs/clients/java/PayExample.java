// Take a barcode payment through the partner API and read it back: JDK 17 only (java.net.http,
// javax.crypto), no build tool, no libraries.
//
//   javac -d out PayExample.java
//   ACQ_BASE_URL=https://api.acquirer.example.com ACQ_KEY_ID=ak_... ACQ_SECRET=... java -cp out PayExample
//
// Optional: ACQ_OUT_TRADE_NO (default: a new one), ACQ_AUTH_CODE (the scanned barcode; default:
// one the sandbox pays at once), ACQ_AMOUNT (default 0.01). Exit status 0 when the payment is
// SUCCESS. The guide: docs/partner-api.md.

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class PayExample {
    private static final String BASE_URL = System.getenv("ACQ_BASE_URL").replaceAll("/+$", "");
    private static final String KEY_ID = System.getenv("ACQ_KEY_ID");
    private static final String SECRET = System.getenv("ACQ_SECRET");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final HexFormat HEX = HexFormat.of();

    /** An answer: the HTTP status and the JSON body as text. */
    record Answer(int status, String body) {
        /** A top-level string member of the body, e.g. {@code status}; null when absent. */
        String field(String name) {
            Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\":\"([^\"]*)\"").matcher(body);
            return m.find() ? m.group(1) : null;
        }
    }

    /** The Authorization header of one request (guide §2): a new nonce and the current time. */
    static String authorization(String method, String pathAndQuery, byte[] body) throws GeneralSecurityException {
        String timestamp = Long.toString(System.currentTimeMillis() / 1000);
        byte[] nonceBytes = new byte[16];
        RANDOM.nextBytes(nonceBytes);
        String nonce = HEX.formatHex(nonceBytes);
        String bodyHash = HEX.formatHex(MessageDigest.getInstance("SHA-256").digest(body));
        String stringToSign = String.join("\n", "ACQ1-HMAC-SHA256", method, pathAndQuery, timestamp, nonce, bodyHash);
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(SECRET.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        String signature = HEX.formatHex(mac.doFinal(stringToSign.getBytes(StandardCharsets.UTF_8)));
        return "ACQ1-HMAC-SHA256 Credential=" + KEY_ID + ", Timestamp=" + timestamp + ", Nonce=" + nonce
                + ", Signature=" + signature;
    }

    /**
     * Sends one call, signed afresh on every attempt; retries what the gateway says is retryable
     * (after Retry-After) and calls that got no answer (every call here is idempotent).
     */
    static Answer call(String method, String pathAndQuery, String json) throws Exception {
        byte[] body = json == null ? new byte[0] : json.getBytes(StandardCharsets.UTF_8);
        int attempts = 4;
        for (int attempt = 1; ; attempt++) {
            long waitSeconds;
            try {
                HttpRequest request = HttpRequest.newBuilder(URI.create(BASE_URL + pathAndQuery))
                        .method(method, method.equals("GET")
                                ? HttpRequest.BodyPublishers.noBody()
                                : HttpRequest.BodyPublishers.ofByteArray(body))
                        .header("Authorization", authorization(method, pathAndQuery, body))
                        .header("Content-Type", "application/json")
                        .timeout(Duration.ofSeconds(30 + 60))
                        .build();
                HttpResponse<String> response = HTTP.send(request, HttpResponse.BodyHandlers.ofString());
                Answer answer = new Answer(response.statusCode(), response.body());
                boolean problem = response.headers().firstValue("Content-Type").orElse("").contains("problem+json");
                boolean retryable = problem
                        ? answer.body().contains("\"retryable\":true")
                        : answer.status() >= 500; // not the gateway's answer (a proxy's): a 5xx may be sent again
                if (answer.status() < 300 || !retryable || attempt == attempts) {
                    return answer;
                }
                waitSeconds = response.headers().firstValue("Retry-After").map(Long::parseLong).orElse(1L << (attempt - 1));
            } catch (IOException noAnswer) { // connection refused or reset, timeout
                if (attempt == attempts) {
                    throw noAnswer;
                }
                waitSeconds = 1L << (attempt - 1);
            }
            Thread.sleep(waitSeconds * 1000);
        }
    }

    /** A JSON string literal. */
    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        return out.append('"').toString();
    }

    static String env(String name, String otherwise) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? otherwise : value;
    }

    static void show(String method, String pathAndQuery, Answer answer) {
        System.out.println(method + " " + pathAndQuery + " -> " + answer.status() + " " + answer.body());
    }

    public static void main(String[] args) throws Exception {
        String outTradeNo = env("ACQ_OUT_TRADE_NO", "java-" + System.currentTimeMillis());
        String payment = "{\"out_trade_no\":" + quote(outTradeNo)
                + ",\"auth_code\":" + quote(env("ACQ_AUTH_CODE", "281234567890123400"))
                + ",\"amount\":" + quote(env("ACQ_AMOUNT", "0.01"))
                + ",\"subject\":" + quote("Beef noodles")
                + ",\"store_id\":" + quote("S1") + "}";
        Answer answer = call("POST", "/v1/payments", payment);
        show("POST", "/v1/payments", answer);
        if (answer.status() != 200) {
            System.exit(2);
        }
        // The payment as the gateway holds it; an UNKNOWN one is held until final (at most 30 s).
        String path = "/v1/payments/" + outTradeNo + "?wait=30";
        answer = call("GET", path, null);
        show("GET", path, answer);
        if (answer.status() == 200 && "UNKNOWN".equals(answer.field("status"))) {
            // Still not final: give up on it (closed if unpaid, given back if paid). Never leave it
            // and start another payment for the same sale.
            path = "/v1/payments/" + outTradeNo + "/cancel";
            answer = call("POST", path, null);
            show("POST", path, answer);
        }
        System.exit(answer.status() == 200 && "SUCCESS".equals(answer.field("status")) ? 0 : 1);
    }
}
