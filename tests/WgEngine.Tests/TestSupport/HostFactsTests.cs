namespace WgEngine.Tests.TestSupport;

public class HostFactsTests
{
    [Fact]
    public void A_missing_requirement_skips_with_its_reason_outside_CI()
    {
        var reason = HostRequirements.SkipReason(HostNeeds.Ipv6Loopback, ci: false, _ => "an IPv6 loopback address (::1)");
        Assert.Equal("SKIPPED: needs an IPv6 loopback address (::1)", reason);
    }

    [Fact]
    public void Under_CI_a_missing_requirement_never_skips_so_the_test_runs_and_fails()
    {
        Assert.Null(HostRequirements.SkipReason(HostNeeds.Namespaces, ci: true, _ => "root (to create network namespaces)"));
    }

    [Fact]
    public void Nothing_missing_means_no_skip()
    {
        Assert.Null(HostRequirements.SkipReason(HostNeeds.Linux, ci: false, _ => null));
        Assert.Null(HostRequirements.Missing(HostNeeds.None));
    }

    [Fact]
    public void The_probes_agree_with_the_platform()
    {
        Assert.Equal(OperatingSystem.IsLinux(), HostRequirements.Missing(HostNeeds.Linux) is null);
        Assert.Equal(!OperatingSystem.IsWindows(), HostRequirements.Missing(HostNeeds.Unix) is null);
        // Not root: the namespace probe names root, whatever else is there.
        if (OperatingSystem.IsLinux() && !Environment.IsPrivilegedProcess)
            Assert.StartsWith("root", HostRequirements.Missing(HostNeeds.Namespaces));
    }
}
