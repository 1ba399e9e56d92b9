package secmon;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.settings.Settings;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.transport.Netty4Plugin;

/**
 * A real single-node OpenSearch on 127.0.0.1 for kubectl-secmon's tests, built from
 * OpenSearch's Maven Central artifacts: the server itself and the netty4 transport plugin
 * for HTTP. No security plugin, no ISM (see the README of tests/opensearch).
 *
 * <p>Usage: {@code java -cp CLASSPATH secmon.Launcher HOME PORT}. HOME holds the data and
 * logs; PORT 0 picks a free one. It prints {@code READY <port>} on stdout once the node has
 * started and its HTTP port is bound, then runs until stdin closes: it then closes the node
 * and exits 0, so the server never outlives the test that started it. A restart (the
 * store going down and coming back) is a new process on the same HOME and PORT: closing
 * and reopening a node inside one JVM trips OpenSearch's set-once globals.
 */
public final class Launcher {
    private Launcher() {}

    /** Node's plugin-taking constructor is protected: the test framework's MockNode does the same. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Settings settings) {
            super(
                InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "secmon-test"),
                List.of(Netty4Plugin.class),
                true);
        }
    }

    static Node start(Path home, int port) throws Exception {
        Settings settings = Settings.builder()
            .put("cluster.name", "secmon-test")
            .put("node.name", "secmon-test")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", Integer.toString(port))
            .put("transport.port", "0")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("discovery.type", "single-node")
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        Node node = new EmbeddedNode(settings);
        node.start();
        return node;
    }

    static int boundPort(Node node) {
        return node.injector()
            .getInstance(HttpServerTransport.class)
            .boundAddress()
            .publishAddress()
            .getPort();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: secmon.Launcher HOME PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]);
        int port = Integer.parseInt(args[1]);
        Node node = start(home, port);
        port = boundPort(node);
        System.out.println("READY " + port);
        System.out.flush();
        // Block until stdin closes: the test harness holds it open while it needs the server.
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        while (in.readLine() != null) {
            // commands are not needed: a restart is a new process on the same HOME and PORT
        }
        node.close();
        node.awaitClose(60, TimeUnit.SECONDS);
        System.exit(0);
    }
}
