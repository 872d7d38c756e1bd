using System.Net;
using WgEngine.Contracts;
using WgEngine.Egress;
using WgEngine.Gateway;

namespace WgEngine.Tests.Gateway;

/// <summary>The backend factory: every kind registered, its capabilities, and the option checks they drive.</summary>
public sealed class BackendFactoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("backend-factory-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Every_kind_has_a_registration()
    {
        Assert.Equal(Enum.GetValues<BackendKind>().Order(), BackendFactory.Kinds.Order());
        var e = Assert.Throws<WgException>(() => BackendFactory.CapabilitiesOf((BackendKind)99));
        Assert.Equal("BackendNotAvailable", e.ErrorId);
        Assert.Equal("BackendNotAvailable", Assert.Throws<WgException>(() => new ServerOptions { Backend = (BackendKind)99 }.Validate()).ErrorId);
    }

    [Fact]
    public void Userspace_owns_everything_and_an_external_device_nothing()
    {
        Assert.Equal(new BackendCapabilities
            {
                OwnsPrivateKey = true, ServesUapi = true, HasEgress = true, Persists = true, EnforcesPolicy = true, SetsMtu = true, OwnsSocket = true,
            },
            BackendFactory.CapabilitiesOf(BackendKind.Userspace));
        Assert.Equal(new BackendCapabilities { ManagesUapiDevice = true }, BackendFactory.CapabilitiesOf(BackendKind.Uapi));
        // The kernel link: the server gives it its key, port, MTU and file, the kernel routes and `wg` reads it over netlink.
        Assert.Equal(new BackendCapabilities { OwnsPrivateKey = true, Persists = true, SetsMtu = true }, BackendFactory.CapabilitiesOf(BackendKind.Kernel));
    }

    public static TheoryData<string, string> KernelRefusals => new()
    {
        { "egress Userspace", "EgressNotApplicable" },
        { "egress options", "EgressNotApplicable" },
        { "bind address", "SettingNotApplicable" },
        { "uapi path", "UapiNotServed" },
        { "isolation", "PolicyNotApplicable" },
        { "keep device port", "InvalidListenPort" },
    };

    /// <summary>Refused from the options alone, so no netlink socket is opened (this host has no wireguard module).</summary>
    [Theory]
    [MemberData(nameof(KernelRefusals))]
    public void What_the_kernel_data_plane_cannot_do_is_refused_before_netlink(string setting, string errorId)
    {
        ServerOptions With() => setting switch
        {
            "egress Userspace" => new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, Egress = EgressMode.Userspace },
            "egress options" => new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, EgressOptions = new EgressOptions() },
            "bind address" => new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, BindAddress = IPAddress.Loopback },
            "uapi path" => new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, UapiPath = Path.Combine(_dir, "k.sock") },
            "isolation" => new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, PeerIsolation = true },
            "keep device port" => new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, ListenPort = ServerOptions.KeepDevicePort },
            _ => throw new ArgumentOutOfRangeException(nameof(setting)),
        };
        Assert.Equal(errorId, Assert.Throws<WgException>(() => With().Validate()).ErrorId);
        Assert.Equal(errorId, Assert.Throws<WgException>(() => VPNServer.Start(With())).ErrorId);
        Assert.False(File.Exists(Path.Combine(_dir, "k.sock")));
        // The MTU is the kernel link's to set: accepted.
        new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, Mtu = 1400 }.Validate();
    }

    [Fact]
    public void Isolation_from_a_config_file_is_refused_for_the_kernel_with_the_file_untouched()
    {
        var path = Path.Combine(_dir, "wgk.conf");
        var text = "[Interface]\nPrivateKey = " + WgEngine.Crypto.WgPrivateKey.Generate().ExportBase64() + "\nAddress = 10.74.0.1/24\nListenPort = 0\n"
            + "#! PeerIsolation = true\n";
        File.WriteAllText(path, text);
        var e = Assert.Throws<WgException>(() => VPNServer.Start(new ServerOptions { Name = "wgk", Backend = BackendKind.Kernel, ConfigPath = path }));
        Assert.Equal("PolicyNotApplicable", e.ErrorId);
        Assert.Equal(text, File.ReadAllText(path));
    }

    public static TheoryData<string, string> ExternalDeviceRefusals => new()
    {
        { "egress Userspace", "EgressNotApplicable" },
        { "egress Tun", "EgressNotApplicable" },
        { "egress options", "EgressNotApplicable" },
        { "mtu", "SettingNotApplicable" },
        { "bind address", "SettingNotApplicable" },
        { "config path", "ConfigPathNotSupported" },
    };

    [Theory]
    [MemberData(nameof(ExternalDeviceRefusals))]
    public void What_an_external_device_lacks_is_refused_before_it_is_asked(string setting, string errorId)
    {
        var options = new ServerOptions { Backend = BackendKind.Uapi, UapiPath = Path.Combine(_dir, "absent.sock") };
        ServerOptions With() => setting switch
        {
            "egress Userspace" => new ServerOptions { Backend = BackendKind.Uapi, UapiPath = options.UapiPath, Egress = EgressMode.Userspace },
            "egress Tun" => new ServerOptions { Backend = BackendKind.Uapi, UapiPath = options.UapiPath, Egress = EgressMode.Tun },
            "egress options" => new ServerOptions { Backend = BackendKind.Uapi, UapiPath = options.UapiPath, EgressOptions = new EgressOptions() },
            "mtu" => new ServerOptions { Backend = BackendKind.Uapi, UapiPath = options.UapiPath, Mtu = 1400 },
            "bind address" => new ServerOptions { Backend = BackendKind.Uapi, UapiPath = options.UapiPath, BindAddress = IPAddress.Loopback },
            "config path" => new ServerOptions { Backend = BackendKind.Uapi, UapiPath = options.UapiPath, ConfigPath = Path.Combine(_dir, "wg0.conf") },
            _ => throw new ArgumentOutOfRangeException(nameof(setting)),
        };
        Assert.Equal(errorId, Assert.Throws<WgException>(() => With().Validate()).ErrorId);
        // Start refuses the same way, before it looks for the device (whose socket does not exist).
        Assert.Equal(errorId, Assert.Throws<WgException>(() => VPNServer.Start(With())).ErrorId);
        Assert.False(File.Exists(Path.Combine(_dir, "wg0.conf")));
    }

    [Fact]
    public void Only_a_device_with_its_own_socket_keeps_its_port()
    {
        new ServerOptions { Backend = BackendKind.Uapi, ListenPort = ServerOptions.KeepDevicePort }.Validate();
        Assert.Equal("InvalidListenPort", Assert.Throws<WgException>(() => new ServerOptions { ListenPort = ServerOptions.KeepDevicePort }.Validate()).ErrorId);
        // The external device's egress is None unless asked otherwise; the in-process engine's is Userspace.
        Assert.Equal(EgressMode.None, new ServerOptions { Backend = BackendKind.Uapi }.EffectiveEgress);
        Assert.Equal(EgressMode.Userspace, new ServerOptions().EffectiveEgress);
        Assert.Equal(EgressMode.None, new ServerOptions { Egress = EgressMode.None }.EffectiveEgress);
    }

    [Fact]
    public void The_factory_builds_each_kind_with_its_capabilities()
    {
        var path = Path.Combine(_dir, "dev.sock");
        using var device = VPNServer.Start(new ServerOptions { Name = "dev", ListenPort = 0, BindAddress = IPAddress.Loopback, UapiPath = path, Egress = EgressMode.None });
        Assert.Equal("Userspace", device.BackendKind);
        Assert.True(device.Capabilities.ServesUapi);
        Assert.Equal(path, device.UapiPath);

        using var managed = VPNServer.Start(new ServerOptions { Name = "managed", Backend = BackendKind.Uapi, UapiPath = path, ListenPort = ServerOptions.KeepDevicePort });
        Assert.Equal("Uapi", managed.BackendKind);
        Assert.False(managed.Capabilities.OwnsPrivateKey);
        Assert.Equal(EgressMode.None, managed.Egress);
        Assert.Equal(path, managed.UapiPath);                    // managed, not served
        Assert.Equal(device.PublicKey, managed.PublicKey);       // the device kept its key...
        Assert.Equal(device.ListenPort, managed.ListenPort);     // ...and its port

        Assert.Equal("UapiPathRequired", Assert.Throws<WgException>(() => VPNServer.Start(new ServerOptions { Backend = BackendKind.Uapi })).ErrorId);
    }
}
