// An FTPS client on Apache commons-net's FTPSClient (JDK JSSE), driven by
// tests/integration/test_real_clients.py.
//
//   java -cp commons-net.jar:DIR FtpsCommonsNet PORT CAFILE USER PASSWORD OP...
//
// Explicit TLS (AUTH TLS), PBSZ 0, PROT P, passive mode, binary type. Each OP
// is one of
//   list:DIR             listFiles(DIR)
//   get:REMOTE:LOCAL     retrieveFile
//   put:LOCAL:REMOTE     storeFile
//   refused:REMOTE       retrieveFile that the server is expected to refuse:
//                        prints how long the call took, what it threw and the
//                        server's reply (read after the failure if commons-net
//                        left it unread)
// and prints one "OP ..." line with the reply code and the time it took.
// The TLS versions are the JDK's (-Djdk.tls.client.protocols=TLSv1.2 limits
// them). Exit status 0 if every OP succeeded, 1 otherwise.
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPFile;
import org.apache.commons.net.ftp.FTPReply;
import org.apache.commons.net.ftp.FTPSClient;

public class FtpsCommonsNet {
    static final int TIMEOUT_MS = 10000;

    /** FTPSClient that remembers the TLS protocol of its control and data sockets. */
    static class Client extends FTPSClient {
        String dataProtocol = "-";

        Client() {
            super("TLS", false);
        }

        String controlProtocol() {
            return _socket_ instanceof SSLSocket ? ((SSLSocket) _socket_).getSession().getProtocol() : "-";
        }

        @Override
        protected void _prepareDataSocket_(Socket socket) throws IOException {
            super._prepareDataSocket_(socket);
            dataProtocol = "pending";
        }

        @Override
        protected Socket _openDataConnection_(String command, String arg) throws IOException {
            Socket s = super._openDataConnection_(command, arg);
            if (s instanceof SSLSocket) {
                dataProtocol = ((SSLSocket) s).getSession().getProtocol();
            }
            return s;
        }
    }

    static String reply(FTPSClient c) {
        return c.getReplyString() == null ? "none" : c.getReplyString().trim().replace("\r\n", " | ");
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = new FileInputStream(args[1])) {
            trust.setCertificateEntry("ftpsd", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);

        System.out.println("VERSION java=" + System.getProperty("java.runtime.version")
                + " commons-net=" + FTPSClient.class.getPackage().getImplementationVersion());

        Client c = new Client();
        c.setTrustManager(tmf.getTrustManagers()[0]);
        c.setConnectTimeout(TIMEOUT_MS);
        c.setDefaultTimeout(TIMEOUT_MS);
        c.setDataTimeout(Duration.ofMillis(TIMEOUT_MS));
        c.connect("127.0.0.1", port);
        c.setSoTimeout(TIMEOUT_MS);
        if (!c.login(args[2], args[3])) {
            System.out.println("LOGIN failed: " + reply(c));
            System.exit(1);
        }
        c.execPBSZ(0);
        c.execPROT("P");
        c.enterLocalPassiveMode();
        c.setFileType(FTP.BINARY_FILE_TYPE);
        System.out.println("CONTROL " + c.controlProtocol());

        boolean allOk = true;
        for (int i = 4; i < args.length; i++) {
            String[] op = args[i].split(":", 3);
            long t0 = System.nanoTime();
            c.dataProtocol = "-";
            boolean ok = false;
            String detail = "";
            try {
                switch (op[0]) {
                case "list": {
                    FTPFile[] files = c.listFiles(op[1]);
                    List<String> names = new ArrayList<>();
                    for (FTPFile f : files) {
                        names.add(f.getName() + "=" + f.getSize());
                    }
                    ok = FTPReply.isPositiveCompletion(c.getReplyCode());
                    detail = "names=" + String.join(",", names);
                    break;
                }
                case "get":
                    try (OutputStream out = new FileOutputStream(op[2])) {
                        ok = c.retrieveFile(op[1], out);
                    }
                    break;
                case "put":
                    try (InputStream in = new FileInputStream(op[1])) {
                        ok = c.storeFile(op[2], in);
                    }
                    break;
                case "refused": {
                    String thrown = "none";
                    boolean returned;
                    try (OutputStream out = new FileOutputStream("/dev/null")) {
                        returned = c.retrieveFile(op[1], out);
                    } catch (IOException e) {
                        returned = false;
                        thrown = e.getClass().getName() + ": " + e.getMessage();
                    }
                    long ms = (System.nanoTime() - t0) / 1000000;
                    // After a failed data handshake commons-net has not read the
                    // server's verdict: read it now (bounded by the control timeout).
                    String verdict = reply(c);
                    if (!thrown.equals("none")) {
                        try {
                            c.getReply();
                            verdict = reply(c);
                        } catch (IOException e) {
                            verdict = "no reply: " + e;
                        }
                    }
                    System.out.println("REFUSED returned=" + returned + " ms=" + ms + " thrown=" + thrown
                            + " reply=" + verdict);
                    ok = !returned;
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown op " + args[i]);
                }
            } catch (IOException e) {
                detail = "exception=" + e;
            }
            long ms = (System.nanoTime() - t0) / 1000000;
            System.out.println("OP " + args[i] + " ok=" + ok + " ms=" + ms + " data=" + c.dataProtocol
                    + " reply=" + reply(c) + (detail.isEmpty() ? "" : " " + detail));
            System.out.flush();
            allOk &= ok;
        }
        try {
            c.logout();
        } catch (IOException e) {
            System.out.println("LOGOUT " + e);
        }
        c.disconnect();
        System.exit(allOk ? 0 : 1);
    }
}
