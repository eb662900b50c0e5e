// Take a barcode payment through the partner API and read it back: .NET 8, no packages.
// NOT run by the test suite (no .NET SDK where the tests run): written to the same contract as
// the Python, Node and Java clients, which are. Review before use.
//
//   ACQ_BASE_URL=https://api.acquirer.example.com ACQ_KEY_ID=ak_... ACQ_SECRET=... dotnet run
//
// Optional: ACQ_OUT_TRADE_NO (default: a new one), ACQ_AUTH_CODE (the scanned barcode; default:
// one the sandbox pays at once), ACQ_AMOUNT (default 0.01). Exit status 0 when the payment is
// SUCCESS. The guide: docs/partner-api.md.

using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

string baseUrl = Environment.GetEnvironmentVariable("ACQ_BASE_URL")!.TrimEnd('/');
string keyId = Environment.GetEnvironmentVariable("ACQ_KEY_ID")!;
string secret = Environment.GetEnvironmentVariable("ACQ_SECRET")!;
string Env(string name, string otherwise) =>
    Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : otherwise;

var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30 + 60) };

// The Authorization header of one request (guide §2): a new nonce and the current time.
string Authorization(string method, string pathAndQuery, byte[] body)
{
    string timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString();
    string nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
    string bodyHash = Convert.ToHexString(SHA256.HashData(body)).ToLowerInvariant();
    string stringToSign = string.Join("\n", "ACQ1-HMAC-SHA256", method, pathAndQuery, timestamp, nonce, bodyHash);
    byte[] tag = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(stringToSign));
    string signature = Convert.ToHexString(tag).ToLowerInvariant();
    return $"ACQ1-HMAC-SHA256 Credential={keyId}, Timestamp={timestamp}, Nonce={nonce}, Signature={signature}";
}

// Sends one call, signed afresh on every attempt; retries what the gateway says is retryable
// (after Retry-After) and calls that got no answer (every call here is idempotent).
async Task<(int Status, JsonNode? Answer)> Call(string method, string pathAndQuery, JsonObject? payload = null)
{
    byte[] body = payload is null ? Array.Empty<byte>() : Encoding.UTF8.GetBytes(payload.ToJsonString());
    const int attempts = 4;
    for (int attempt = 1; ; attempt++)
    {
        TimeSpan wait;
        try
        {
            var request = new HttpRequestMessage(new HttpMethod(method), baseUrl + pathAndQuery);
            request.Headers.TryAddWithoutValidation("Authorization", Authorization(method, pathAndQuery, body));
            if (method != "GET")
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }
            using var response = await http.SendAsync(request);
            int status = (int)response.StatusCode;
            string text = await response.Content.ReadAsStringAsync();
            JsonNode? answer;
            try { answer = JsonNode.Parse(text); }
            catch (JsonException) { answer = new JsonObject { ["detail"] = text, ["retryable"] = status >= 500 }; }
            bool retryable = answer?["retryable"]?.GetValue<bool>() ?? false;
            if (response.IsSuccessStatusCode || !retryable || attempt == attempts) return (status, answer);
            wait = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1 << (attempt - 1));
        }
        catch (HttpRequestException) when (attempt < attempts) // no answer: refused, reset
        {
            wait = TimeSpan.FromSeconds(1 << (attempt - 1));
        }
        catch (TaskCanceledException) when (attempt < attempts) // timeout
        {
            wait = TimeSpan.FromSeconds(1 << (attempt - 1));
        }
        await Task.Delay(wait);
    }
}

void Show(string method, string pathAndQuery, int status, JsonNode? answer) =>
    Console.WriteLine($"{method} {pathAndQuery} -> {status} {answer?.ToJsonString()}");

string outTradeNo = Env("ACQ_OUT_TRADE_NO", $"cs-{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}");
var payment = new JsonObject
{
    ["out_trade_no"] = outTradeNo,
    ["auth_code"] = Env("ACQ_AUTH_CODE", "281234567890123400"),
    ["amount"] = Env("ACQ_AMOUNT", "0.01"),
    ["subject"] = "Beef noodles",
    ["store_id"] = "S1",
};
var (status, answer) = await Call("POST", "/v1/payments", payment);
Show("POST", "/v1/payments", status, answer);
if (status != 200) return 2;
// The payment as the gateway holds it; an UNKNOWN one is held until final (at most 30 s).
string path = $"/v1/payments/{outTradeNo}?wait=30";
(status, answer) = await Call("GET", path);
Show("GET", path, status, answer);
if (status == 200 && (string?)answer?["status"] == "UNKNOWN")
{
    // Still not final: give up on it (closed if unpaid, given back if paid). Never leave it and
    // start another payment for the same sale.
    path = $"/v1/payments/{outTradeNo}/cancel";
    (status, answer) = await Call("POST", path);
    Show("POST", path, status, answer);
}
return status == 200 && (string?)answer?["status"] == "SUCCESS" ? 0 : 1;
