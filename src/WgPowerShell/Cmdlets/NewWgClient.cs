using System.Management.Automation;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Cryptography;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;
using WgPowerShell.Formatting;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// New-WgClient: provisions a client end to end. A new key pair (and PSK with -WithPresharedKey), the
/// peer added with allocated addresses, and a WgClient whose Config is the client's wg-quick file.
/// The gateway only ever sees the public key; the private key is in the output and nowhere else.
/// </summary>
[Cmdlet(VerbsCommon.New, "WgClient", SupportsShouldProcess = true, DefaultParameterSetName = FullSet)]
[OutputType(typeof(WgClient))]
public sealed class NewWgClientCommand : WgPeerCmdletBase
{
    private const string FullSet = "AllowedIPs";
    private const string SplitSet = "SplitTunnel";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "";

    /// <summary>host[:port] the client dials; the port defaults to the server's ListenPort.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowNull, AllowEmptyString]
    public string? Endpoint { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [AllowNull, AllowEmptyCollection]
    public string[]? DNS { get; set; }

    /// <summary>What the client routes into the tunnel; default 0.0.0.0/0, ::/0 (full tunnel).</summary>
    [Parameter(ParameterSetName = FullSet, ValueFromPipelineByPropertyName = true)]
    [AllowNull, AllowEmptyCollection]
    [ValidateCidr]
    public string[]? AllowedIPs { get; set; }

    /// <summary>Route only the gateway's own prefixes (its -Address networks) into the tunnel.</summary>
    [Parameter(ParameterSetName = SplitSet, Mandatory = true)]
    public SwitchParameter SplitTunnel { get; set; }

    [Parameter]
    public SwitchParameter WithPresharedKey { get; set; }

    /// <summary>Seconds between the client's keepalives (keeps NAT mappings open); 0 = off.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 65535)]
    public int PersistentKeepalive { get; set; } = 25;

    private readonly HashSet<string> _guessed = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, HashSet<string>> _names = new(StringComparer.OrdinalIgnoreCase);

    protected override void ProcessRecord()
    {
        var dns = CheckDns(DNS);
        var server = ResolveServer();
        if (server is null) return;
        if (FromServerObject(nameof(Name)))
        {
            WriteError(new ErrorRecord(new ArgumentException("A WgServer from the pipeline only says which server to add the client to; give the client's -Name."),
                "ClientNameMissing", ErrorCategory.InvalidArgument, PipedServer?.Name));
            return;
        }
        string endpoint = EndpointFor(server);
        var routes = SplitTunnel
            ? server.Addresses.Select(a => a.Network.ToString()).Distinct().ToArray()
            : AllowedIPs is { Length: > 0 } ? Parse.Prefixes(AllowedIPs).Select(p => p.ToString()).ToArray()
            : ["0.0.0.0/0", "::/0"];

        var names = NamesOn(server);
        if (!ShouldProcess($"client '{Name}' (a new key pair{(WithPresharedKey ? " and preshared key" : "")}, an allocated address) on server '{server.Name}'", "Add"))
            return;

        using var key = WgPrivateKey.Generate();
        WgKey? psk = null;
        if (WithPresharedKey)
        {
            Span<byte> b = stackalloc byte[WgKey.Size];
            RandomNumberGenerator.Fill(b);
            psk = new WgKey(b);
            b.Clear();
        }
        PeerStatus status;
        try
        {
            status = server.AddPeer(new PeerSpec { PublicKey = key.PublicKey, Name = Name, PresharedKey = psk });
        }
        catch (WgException e)
        {
            WriteWgError(e, Name);
            return;
        }
        // Names are labels, not identities (Add-WgPeer takes duplicates too): a second client of that name is
        // made, but a rerun of a provisioning script should not go unnoticed.
        if (!names.Add(Name))
            WriteWarning($"Server '{server.Name}' already had a peer named '{Name}'; the new client has the same name and public key {ShortKey(key.PublicKey.ToBase64())}.");
        var address = status.AllowedIPs.Select(a => a.ToString()).ToArray();
        var config = ClientConfigText.Render(new ClientConfigSpec
        {
            PrivateKey = key.ExportBase64(),
            Address = address,
            DNS = dns,
            ServerPublicKey = server.PublicKey.ToBase64(),
            PresharedKey = psk?.ToBase64(),
            Endpoint = endpoint,
            AllowedIPs = routes,
            PersistentKeepalive = PersistentKeepalive,
        });
        WriteVerbose($"Added client '{Name}' ({ShortKey(key.PublicKey.ToBase64())}) with {string.Join(", ", address)} to '{server.Name}'.");
        WriteObject(new WgClient
        {
            Server = server.Name, Name = Name, PublicKey = key.PublicKey.ToBase64(), Address = address,
            Endpoint = endpoint, DNS = dns, AllowedIPs = routes, PersistentKeepalive = PersistentKeepalive,
            HasPresharedKey = psk is not null, Config = config,
        });
    }

    /// <summary>Peer names on a server, read once per pipeline (a long pipeline of names stays linear).</summary>
    private HashSet<string> NamesOn(IGatewayServer server)
    {
        if (!_names.TryGetValue(server.Name, out var set))
        {
            set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var p in server.GetPeers())
                if (!string.IsNullOrEmpty(p.Name)) set.Add(p.Name);
            _names[server.Name] = set;
        }
        return set;
    }

    /// <summary>-Endpoint with the server's port added when missing, or a guess (warned once per server).</summary>
    private string EndpointFor(IGatewayServer server)
    {
        if (!string.IsNullOrWhiteSpace(Endpoint))
        {
            if (ClientEndpoint.TryNormalize(Endpoint, server.ListenPort, out var ep)) return ep;
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException($"-Endpoint '{Endpoint}' is not host[:port], e.g. vpn.example.com:51820, 203.0.113.5 or [2001:db8::1]:51820."),
                "InvalidClientEndpoint", ErrorCategory.InvalidArgument, Endpoint));
        }
        var guess = ClientEndpoint.Guess(server.ListenPort);
        if (_guessed.Add(server.Name))
            WriteWarning($"No -Endpoint given: clients of '{server.Name}' will dial {guess}, an address of this host. " +
                         "If they reach the gateway another way (public IP, DNS name, port forward), pass it: -Endpoint vpn.example.com:" + server.ListenPort + ".");
        return guess;
    }

    /// <summary>DNS servers (IP addresses) or search domains; anything that could break the file is unusable input.</summary>
    private string[] CheckDns(string[]? items)
    {
        var list = new List<string>();
        foreach (var item in items ?? [])
            foreach (var part in (item ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (!IPAddress.TryParse(part, out _) && !ClientEndpoint.IsHostName(part))
                    ThrowTerminatingError(new ErrorRecord(
                        new ArgumentException($"-DNS '{part}' is neither an IP address nor a search domain."),
                        "InvalidClientDns", ErrorCategory.InvalidArgument, part));
                list.Add(part);
            }
        return list.ToArray();
    }
}
