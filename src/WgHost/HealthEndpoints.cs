namespace WgHost;

/// <summary>/healthz: the process serves requests. /readyz: every gateway is running (503 otherwise).</summary>
public static class HealthEndpoints
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/healthz", () => Results.Text("ok\n")).ExcludeFromDescription();
        app.MapGet("/readyz", (GatewayService gateways) => gateways.IsReady
            ? Results.Text("ready\n")
            : Results.Text("not ready\n", statusCode: StatusCodes.Status503ServiceUnavailable)).ExcludeFromDescription();
    }
}
