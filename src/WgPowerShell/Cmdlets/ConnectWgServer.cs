using System.Management.Automation;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using WgApi;
using WgEngine.Contracts;
using WgPowerShell.Models;
using WgPowerShell.Session;

namespace WgPowerShell.Cmdlets;

/// <summary>
/// Connect-WgServer: from now on this runspace's server and peer cmdlets act on the gateways of a host
/// process (WgHost), through its management API: the local unix socket (-Path) or HTTPS with a token
/// (-Uri with -Token or -Credential). The connection is checked before it replaces any earlier one.
/// </summary>
[Cmdlet(VerbsCommunications.Connect, "WgServer", DefaultParameterSetName = PathSet)]
[OutputType(typeof(WgConnection))]
public sealed partial class ConnectWgServerCommand : WgCmdletBase
{
    private const string PathSet = "Path", TokenSet = "Token", CredentialSet = "Credential";

    /// <summary>The host's API socket; default /run/wireguard-gateway/api.sock.</summary>
    [Parameter(Position = 0, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "/run/wireguard-gateway/api.sock";

    [Parameter(Mandatory = true, ParameterSetName = TokenSet)]
    [Parameter(Mandatory = true, ParameterSetName = CredentialSet)]
    [ValidateNotNull]
    public Uri? Uri { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = TokenSet)]
    [ValidateNotNullOrEmpty]
    public string? Token { get; set; }

    /// <summary>The token as the password of a credential (the user name is not used).</summary>
    [Parameter(Mandatory = true, ParameterSetName = CredentialSet)]
    [ValidateNotNull]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>A PEM certificate the host's certificate must chain to (a self-signed host); default: the system's trust.</summary>
    [Parameter(ParameterSetName = TokenSet)]
    [Parameter(ParameterSetName = CredentialSet)]
    [ValidateNotNullOrEmpty]
    public string? CertificatePath { get; set; }

    /// <summary>Seconds an API call may take.</summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSeconds { get; set; } = 100;

    protected override void ProcessRecord()
    {
        if (ParameterSetName == RegistrySet) { ConnectFleet(); return; }   // ConnectWgServer.Fleet.cs
        var timeout = TimeSpan.FromSeconds(TimeoutSeconds);
        WgApiClient client;
        string kind;
        if (ParameterSetName == PathSet)
        {
            client = WgApiClient.ForUnixSocket(GetUnresolvedProviderPathFromPSPath(Path), timeout);
            kind = "UnixSocket";
        }
        else
        {
            if (Uri!.Scheme != Uri.UriSchemeHttps)
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Uri '{Uri}' is not https://: a gateway host serves its API remotely over HTTPS only."),
                    "InvalidWgHostUri", ErrorCategory.InvalidArgument, Uri));
            string token = Token ?? new NetworkCredential("", Credential!.Password).Password;
            X509Certificate2? trusted = null;
            if (CertificatePath is not null)
            {
                try { trusted = X509CertificateLoader.LoadCertificateFromFile(GetUnresolvedProviderPathFromPSPath(CertificatePath)); }
                catch (Exception e) when (e is IOException or System.Security.Cryptography.CryptographicException)
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-CertificatePath: {e.Message}", e), "InvalidCertificatePath", ErrorCategory.InvalidArgument, CertificatePath));
                }
            }
            client = WgApiClient.ForHttps(Uri, token, trusted, timeout);
            kind = "Https";
        }
        var connection = new RemoteConnection(client, kind);
        string[] names;
        try
        {
            names = connection.All().Select(s => s.Name).ToArray();
        }
        catch (Exception e) when (e is WgRemoteException or WgEngine.Contracts.WgException)
        {
            connection.Dispose();
            var id = e is WgRemoteException r ? r.Error.ErrorId : ((WgEngine.Contracts.WgException)e).ErrorId;
            ThrowTerminatingError(new ErrorRecord(e, id, ErrorCategory.ConnectionError, client.Endpoint));
            return;
        }
        Session.SetRemote(connection);
        WriteVerbose($"Connected to the gateway host at {client.Endpoint}: {names.Length} server(s) ({string.Join(", ", names)}).");
        WriteObject(new WgConnection { Endpoint = client.Endpoint, Kind = kind, Servers = names });
    }
}
