using Mediator;

namespace Sva.Commands;

/// <summary>A request that can say what is wrong with it before any handler runs.</summary>
public interface IValidatable
{
    IEnumerable<string> Validate();
}

public sealed class CommandValidationException(IReadOnlyList<string> problems)
    : Exception(string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>Refuses a request whose <see cref="IValidatable.Validate"/> names problems (a Mediator pipeline behaviour).</summary>
public sealed class ValidationBehavior<TMessage, TResponse> : IPipelineBehavior<TMessage, TResponse>
    where TMessage : IMessage
{
    public ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        if (message is IValidatable v)
        {
            var problems = v.Validate().ToList();
            if (problems.Count > 0) throw new CommandValidationException(problems);
        }
        return next(message, cancellationToken);
    }
}

/// <summary>Where request logging goes (stderr with --verbose; null: nowhere).</summary>
public sealed record RequestLog(TextWriter? Writer);

/// <summary>Logs each request's name, duration and failure (a Mediator pipeline behaviour).</summary>
public sealed class LoggingBehavior<TMessage, TResponse>(RequestLog log) : IPipelineBehavior<TMessage, TResponse>
    where TMessage : IMessage
{
    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        if (log.Writer is not { } w) return await next(message, cancellationToken);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            var result = await next(message, cancellationToken);
            await w.WriteLineAsync($"[sva] {typeof(TMessage).Name} ok in {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F1} ms");
            return result;
        }
        catch (Exception ex)
        {
            await w.WriteLineAsync($"[sva] {typeof(TMessage).Name} failed after {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F1} ms: {ex.Message}");
            throw;
        }
    }
}
