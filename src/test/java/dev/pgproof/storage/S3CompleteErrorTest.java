package dev.pgproof.storage;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Answers s3proxy never gives, scripted with a tiny HTTP server in front of the real SDK:
 * CompleteMultipartUpload answered "200 OK" with an {@code <Error>} body (pgBackRest missed it,
 * pgbackrest#1290): the upload fails and is aborted; and a PUT whose answer is lost after the
 * object was stored, so that the SDK's retry gets "412 Precondition Failed" from If-None-Match:
 * the object is ours (HEAD: size and SHA-256), so the write succeeded.
 */
class S3CompleteErrorTest {
    private HttpServer http;
    private final List<String> requests = new CopyOnWriteArrayList<>();
    private volatile String completionCode = "InvalidPart";
    /** For the lost-answer test: what the scripted store holds (size and x-amz-meta-pgproof-sha256), or null. */
    private volatile String[] stored;
    private volatile boolean loseNextPutAnswer;

    @BeforeEach
    void start() throws IOException {
        http = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        http.createContext("/", this::answer);
        http.start();
    }

    @AfterEach
    void stop() {
        http.stop(0);
    }

    private void answer(HttpExchange ex) throws IOException {
        String q = ex.getRequestURI().getRawQuery() == null ? "" : ex.getRequestURI().getRawQuery();
        String m = ex.getRequestMethod();
        ex.getRequestBody().readAllBytes();
        requests.add(m + " " + ex.getRequestURI().getPath() + (q.isEmpty() ? "" : "?" + q.replaceAll("=[^&]*", "")));
        if (m.equals("PUT") && q.isEmpty()) { // PutObject
            if (stored != null) {
                send(ex, 412, "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not "
                        + "hold</Message></Error>");
                return;
            }
            String decoded = ex.getRequestHeaders().getFirst("x-amz-decoded-content-length"); // aws-chunked body over http
            stored = new String[] {decoded != null ? decoded : ex.getRequestHeaders().getFirst("Content-Length"),
                ex.getRequestHeaders().getFirst("x-amz-meta-pgproof-sha256")};
            if (loseNextPutAnswer) {
                loseNextPutAnswer = false;
                ex.close(); // stored, but the answer never reaches the client
                return;
            }
            send(ex, 200, "");
        } else if (m.equals("HEAD") && stored != null) {
            ex.getResponseHeaders().add("x-amz-meta-pgproof-sha256", stored[1]);
            ex.getResponseHeaders().add("Content-Length", stored[0]);
            ex.sendResponseHeaders(200, -1);
            ex.close();
        } else if (m.equals("HEAD")) {
            ex.sendResponseHeaders(404, -1);
            ex.close();
        } else if (m.equals("POST") && q.contains("uploads")) {
            send(ex, 200, "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>p/k</Key><UploadId>U1</UploadId></InitiateMultipartUploadResult>");
        } else if (m.equals("PUT") && q.contains("partNumber")) {
            ex.getResponseHeaders().add("ETag", "\"e" + requests.size() + "\"");
            send(ex, 200, "");
        } else if (m.equals("POST") && q.contains("uploadId")) {
            send(ex, 200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + completionCode + "</Code><Message>The "
                    + completionCode + " error in a 200 body.</Message><RequestId>R1</RequestId></Error>");
        } else if (m.equals("DELETE") && q.contains("uploadId")) {
            ex.sendResponseHeaders(204, -1);
            ex.close();
        } else {
            send(ex, 404, "<Error><Code>NoSuchKey</Code><Message>no</Message></Error>");
        }
    }

    private static void send(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/xml");
        ex.sendResponseHeaders(status, b.length == 0 ? -1 : b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    private String upload() throws Exception {
        String endpoint = "http://127.0.0.1:" + http.getAddress().getPort();
        S3Options o = new S3Options("b", "p", endpoint, "us-east-1", true, null, null, null, true, "id", "secret", Duration.ofSeconds(2),
                Duration.ofSeconds(4), 5 << 20, 2);
        try (S3Storage s = new S3Storage(o); Storage.Writer w = s.create("k")) {
            w.stream().write(new byte[6 << 20]);
            Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> w.commit(false));
            assertThat(t).isInstanceOf(IOException.class).hasMessageStartingWith("S3 multipart upload of s3://b/p/k at endpoint " + endpoint
                    + " failed: ");
            return t.getMessage();
        }
    }

    @Test
    void anErrorInThe200BodyOfACompletionFailsTheWriteAndAbortsTheUpload() throws Exception {
        assertThat(upload()).contains("The InvalidPart error in a 200 body.");
        assertThat(requests).filteredOn(r -> r.equals("POST /b/p/k?uploadId")).hasSize(1);
        assertThat(requests).startsWith("POST /b/p/k?uploads").contains("PUT /b/p/k?partNumber&uploadId").contains("POST /b/p/k?uploadId")
                .contains("DELETE /b/p/k?uploadId");
        assertThat(requests.lastIndexOf("DELETE /b/p/k?uploadId")).isGreaterThan(requests.lastIndexOf("POST /b/p/k?uploadId"));
        assertThat(requests).filteredOn(r -> r.startsWith("PUT")).hasSize(2);
    }

    @Test
    void aRetryableErrorInThe200BodyIsRetriedWithinTheTimeoutThenFails() throws Exception {
        completionCode = "InternalError";
        long t0 = System.nanoTime();
        upload();
        assertThat((System.nanoTime() - t0) / 1_000_000).as("ms").isLessThan(10_000);
        assertThat(requests).filteredOn(r -> r.equals("POST /b/p/k?uploadId")).as("completion attempts").hasSizeGreaterThan(1);
        assertThat(requests).contains("DELETE /b/p/k?uploadId");
    }

    @Test
    void aNoReplacePutWhoseAnswerWasLostIsConfirmedByWhatIsStored() throws Exception {
        String endpoint = "http://127.0.0.1:" + http.getAddress().getPort();
        S3Options o = new S3Options("b", "p", endpoint, "us-east-1", true, null, null, null, true, "id", "secret", Duration.ofSeconds(2),
                Duration.ofSeconds(4), 5 << 20, 2);
        loseNextPutAnswer = true;
        try (S3Storage s = new S3Storage(o); Storage.Writer w = s.create("k")) {
            w.stream().write("content".getBytes(StandardCharsets.UTF_8));
            w.commit(true);
        }
        assertThat(requests).containsExactly("HEAD /b/p/k", "PUT /b/p/k", "PUT /b/p/k", "HEAD /b/p/k");

        // Another writer's content under the key: a real "already exists".
        requests.clear();
        try (S3Storage s = new S3Storage(o); Storage.Writer w = s.create("k")) {
            w.stream().write("other".getBytes(StandardCharsets.UTF_8));
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> w.commit(true))
                    .isInstanceOf(java.nio.file.FileAlreadyExistsException.class);
        }
    }
}
