using System.Management.Automation;
using WgEngine.Contracts;
using WgEngine.Gateway;
using WgPowerShell.Models;
using WgPowerShell.Validation;

namespace WgPowerShell.Cmdlets;

/// <summary>Set-WgTag: sets a tag's ordered access rules; every peer carrying the tag follows them from the next packet.</summary>
[Cmdlet(VerbsCommon.Set, "WgTag", SupportsShouldProcess = true)]
[OutputType(typeof(WgTag))]
public sealed class SetWgTagCommand : WgPeerCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateTag]
    public string Name { get; set; } = "";

    /// <summary>The tag's ordered rules; @() removes them.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [AllowEmptyCollection]
    [ValidateAcl]
    public string[] Acl { get; set; } = [];

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var server = ResolveServer();
        if (server is null) return;
        if (FromServerObject(nameof(Name)))
        {
            WriteError(new ErrorRecord(new ArgumentException("A WgServer from the pipeline only says which server the tag is on; give the tag's -Name."),
                "TagNameMissing", ErrorCategory.InvalidArgument, PipedServer?.Name));
            return;
        }
        var rules = ValidateAclAttribute.Rules(Acl);
        if (!ShouldProcess($"tag '{Name}' on server '{server.Name}': {(rules.Count == 0 ? "no rules" : string.Join("; ", rules))}", "Set")) return;
        try
        {
            server.SetTagRules(Name, rules);
            WriteVerbose($"Tag '{Name}' on '{server.Name}' has {rules.Count} rule(s) from the next packet.");
            if (PassThru) WriteObject(GetWgTagCommand.Read(server).First(t => string.Equals(t.Name, Name, StringComparison.OrdinalIgnoreCase)));
        }
        catch (WgException e)
        {
            WriteWgError(e, Name);
        }
    }
}
