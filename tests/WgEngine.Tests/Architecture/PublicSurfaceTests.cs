using WgEngine.Gateway;

namespace WgEngine.Tests.Architecture;

/// <summary>
/// The engine's public types are what the module, the host and the API need (issue 14); everything else is
/// internal and reached by tests, bench, fuzz and tools through InternalsVisibleTo. A type made public, or one
/// the front ends stopped needing, fails here until the list below says so on purpose.
/// </summary>
public sealed class PublicSurfaceTests
{
    private static readonly string[] Approved =
    [
        "WgEngine.Config.AtomicFile", "WgEngine.Config.WgConfig", "WgEngine.Config.WgConfigFormat", "WgEngine.Config.WgConfigParser",
        "WgEngine.Config.WgConfigWriter", "WgEngine.Config.WgInterfaceSection", "WgEngine.Config.WgPeerSection",
        "WgEngine.Contracts.BackendCapabilities", "WgEngine.Contracts.BackendKind", "WgEngine.Contracts.InterfaceStats",
        "WgEngine.Contracts.PeerStatus", "WgEngine.Contracts.PeerTag", "WgEngine.Contracts.ServerMetrics",
        "WgEngine.Contracts.WgErrorKind", "WgEngine.Contracts.WgException",
        "WgEngine.Crypto.WgKey", "WgEngine.Crypto.WgPrivateKey",
        "WgEngine.Egress.EgressCounters", "WgEngine.Egress.EgressOptions", "WgEngine.Egress.EgressRules",
        "WgEngine.Gateway.BackendFactory", "WgEngine.Gateway.EgressMode", "WgEngine.Gateway.IGatewayServer",
        "WgEngine.Gateway.MeshPeer", "WgEngine.Gateway.MeshTunnel",
        "WgEngine.Gateway.PeerBatchResult", "WgEngine.Gateway.PeerChecks", "WgEngine.Gateway.PeerEventArgs", "WgEngine.Gateway.PeerEventKind",
        "WgEngine.Gateway.PeerSpec", "WgEngine.Gateway.PeerUpdate", "WgEngine.Gateway.ServerOptions",
        "WgEngine.Gateway.ServerState", "WgEngine.Gateway.VPNServer",
        "WgEngine.Net.IpPrefix",
        "WgEngine.Policy.AclProtocol", "WgEngine.Policy.AclRule", "WgEngine.Policy.DataQuota", "WgEngine.Policy.QuotaPeriod",
        "WgEngine.Policy.RateLimit",
        "WgEngine.Uapi.UapiSocketFile",
    ];

    [Fact]
    public void The_engine_exports_exactly_the_approved_types()
    {
        var exported = typeof(VPNServer).Assembly.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal).ToList();
        var unexpected = exported.Except(Approved).ToList();
        var gone = Approved.Except(exported).ToList();
        Assert.True(unexpected.Count == 0 && gone.Count == 0,
            $"public but not approved: {string.Join(", ", unexpected)}; approved but not public: {string.Join(", ", gone)}");
    }
}
