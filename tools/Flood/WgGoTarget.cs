using System.Diagnostics;
using System.Net;
using System.Text;
using WgEngine.Crypto;

namespace Flood;

/// <summary>
/// A throw-away wireguard-go responder with the given peers, as tests/Interop/WgInterop.psm1 sets one
/// up: the process runs in the root namespace (so its UDP socket is on 127.0.0.1), its TUN is moved
/// into a namespace created here before it is up, and the key and peers go in over `wg setconf` on
/// stdin (never argv). Dispose stops the process and deletes the namespace, also after a failure.
/// </summary>
internal sealed class WgGoTarget : IDisposable
{
    private const string UapiDir = "/var/run/wireguard";
    private readonly string _name, _ns;
    private readonly Process _process;

    public IPEndPoint Endpoint { get; }
    public int Pid => _process.Id;

    /// <param name="name">Interface and namespace name (a caller that may have to kill this process uses it to clean up); default whs + 6 random hex digits.</param>
    public WgGoTarget(WgPrivateKey key, (byte[] Priv, byte[] Pub)[] peers, string? name = null)
    {
        name ??= "whs" + Convert.ToHexString(BitConverter.GetBytes(Random.Shared.Next())).ToLowerInvariant()[..6];
        if (name.Length is 0 or > 15 || !name.All(char.IsAsciiLetterOrDigit)) throw new ArgumentException("--name: 1-15 letters or digits");
        _name = name; // within IFNAMSIZ - 1 = 15
        _ns = name;
        Exec("ip", ["netns", "add", _ns]);
        var psi = new ProcessStartInfo("wireguard-go") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(_name);
        psi.Environment["WG_PROCESS_FOREGROUND"] = "1";
        psi.Environment["LOG_LEVEL"] = "error";
        try
        {
            _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start wireguard-go");
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            var sock = Path.Combine(UapiDir, _name + ".sock");
            var wait = Stopwatch.StartNew();
            while (!File.Exists(sock) && !_process.HasExited && wait.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(20);
            if (!File.Exists(sock)) throw new InvalidOperationException($"wireguard-go {_name} did not create {sock} within 10 s");

            Exec("ip", ["link", "set", _name, "netns", _ns]);
            var conf = new StringBuilder();
            conf.Append("[Interface]\nPrivateKey = ").Append(key.ExportBase64()).Append('\n');
            for (int i = 0; i < peers.Length; i++)
                conf.Append("[Peer]\nPublicKey = ").Append(Convert.ToBase64String(peers[i].Pub))
                    .Append($"\nAllowedIPs = 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32\n");
            Exec("wg", ["setconf", _name, "/dev/stdin"], conf.ToString());
            Exec("ip", ["-n", _ns, "link", "set", _name, "up"]);
            int port = int.Parse(Exec("wg", ["show", _name, "listen-port"]).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Endpoint = new IPEndPoint(IPAddress.Loopback, port);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static string Exec(string file, string[] args, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        if (stdin is not null) { p.StandardInput.Write(stdin); p.StandardInput.Close(); }
        var errTask = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(15_000)) { p.Kill(); throw new InvalidOperationException($"{file} {args[0]} timed out"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {errTask.Result.Trim()}");
        return output;
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            // SIGTERM first, so wireguard-go removes its UAPI socket and TUN itself.
            try { Exec("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]); } catch (InvalidOperationException) { }
            if (!_process.WaitForExit(3000)) _process.Kill();
            _process.WaitForExit(3000);
        }
        _process?.Dispose();
        try { File.Delete(Path.Combine(UapiDir, _name + ".sock")); } catch (IOException) { }
        try { Exec("ip", ["netns", "delete", _ns]); } catch (InvalidOperationException) { }
    }
}
