using System.Text.Json;
using WgApi;
using WgEngine.Contracts;
using WgEngine.Gateway;

namespace WgHost.Api;

/// <summary>
/// Every failure as a JSON ErrorDto with the cmdlets' stable ErrorId and a fitting status: engine errors
/// by kind, unknown servers, and the HTTP layer's (malformed JSON, unknown fields, wrong types, bodies
/// over the limit, stalled bodies, a missing or non-JSON body).
/// </summary>
internal static class ApiErrors
{
    public static int Status(WgErrorKind kind) => kind switch
    {
        WgErrorKind.InvalidArgument or WgErrorKind.InvalidData => StatusCodes.Status400BadRequest,
        WgErrorKind.NotFound => StatusCodes.Status404NotFound,
        WgErrorKind.AlreadyExists or WgErrorKind.InvalidOperation or WgErrorKind.LimitExceeded => StatusCodes.Status409Conflict,
        WgErrorKind.ResourceUnavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static IResult From(WgException e) =>
        Result(Status(e.Kind), e.ErrorId, e.Message, e.Kind.ToString());

    public static ErrorDto Dto(WgException e) => new() { ErrorId = e.ErrorId, Message = e.Message, Kind = e.Kind.ToString() };

    public static IResult Result(int status, string errorId, string message, string kind = "Request") =>
        Results.Json(new ErrorDto { ErrorId = errorId, Message = message, Kind = kind }, WgApiJson.Options, statusCode: status);

    public static Task Write(HttpContext context, int status, string errorId, string message, string kind = "Request")
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new ErrorDto { ErrorId = errorId, Message = message, Kind = kind }, WgApiJson.Options);
    }

    /// <summary>Turns the HTTP layer's BadHttpRequestException (minimal APIs throw it with ThrowOnBadRequest) into an ErrorDto.</summary>
    public static async Task Middleware(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            var (id, message) = Describe(e);
            context.Response.Clear();
            await Write(context, e.StatusCode, id, message);
        }
    }

    private static (string Id, string Message) Describe(Microsoft.AspNetCore.Http.BadHttpRequestException e)
    {
        switch (e.StatusCode)
        {
            case StatusCodes.Status413PayloadTooLarge:
                return ("RequestBodyTooLarge", "The request body is larger than the API accepts (Api:MaxRequestBodyBytes).");
            case StatusCodes.Status408RequestTimeout:
                return ("RequestTimeout", "The request body arrived too slowly.");
            case StatusCodes.Status415UnsupportedMediaType:
                return ("UnsupportedMediaType", "The body must be JSON (Content-Type: application/json).");
        }
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is JsonException j)
            {
                // System.Text.Json's messages name the path, never the value; keep only the first sentence.
                var text = j.Message.Split(" Path:", 2)[0];
                var where = j.Path is { Length: > 0 } p ? $" (at {p})" : "";
                if (text.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
                    return ("UnknownJsonField", $"The body has a field this API does not know{where}.");
                if (text.Contains("missing required properties", StringComparison.Ordinal))
                    return ("MissingJsonField", $"The body lacks a required field: {text}");
                return ("InvalidJson", $"The body is not valid JSON for this request{where}.");
            }
        }
        return e.Message.Contains("body", StringComparison.OrdinalIgnoreCase)
            ? ("InvalidJson", "The request needs a JSON body.")
            : ("BadRequest", "The request is malformed.");
    }
}
