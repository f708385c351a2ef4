namespace Sva.Commands;

/// <summary>A request the dispatcher sends to exactly one handler.</summary>
public interface IRequest<TResponse>;

public interface IRequestHandler<in TRequest, TResponse> where TRequest : IRequest<TResponse>
{
    Task<TResponse> HandleAsync(TRequest request, CancellationToken ct);
}

/// <summary>A step around every handler (validation, logging, …), outermost first in registration order.</summary>
public interface IPipelineBehavior
{
    Task<TResponse> HandleAsync<TRequest, TResponse>(TRequest request, Func<Task<TResponse>> next, CancellationToken ct)
        where TRequest : IRequest<TResponse>;
}

/// <summary>
/// Sends requests to their handlers through the pipeline behaviours. Handlers are registered
/// explicitly (no assembly scan); the chain for a request type is built once and cached.
/// </summary>
public sealed class Dispatcher
{
    private readonly Dictionary<Type, object> handlers = new();
    private readonly List<IPipelineBehavior> behaviors = new();

    public Dispatcher Handle<TRequest, TResponse>(IRequestHandler<TRequest, TResponse> handler) where TRequest : IRequest<TResponse>
    {
        if (!handlers.TryAdd(typeof(TRequest), handler))
            throw new InvalidOperationException($"a handler for {typeof(TRequest).Name} is already registered");
        return this;
    }

    public Dispatcher Use(IPipelineBehavior behavior)
    {
        behaviors.Add(behavior);
        return this;
    }

    public Task<TResponse> SendAsync<TRequest, TResponse>(TRequest request, CancellationToken ct = default) where TRequest : IRequest<TResponse>
    {
        if (!handlers.TryGetValue(typeof(TRequest), out var h))
            throw new InvalidOperationException($"no handler registered for {typeof(TRequest).Name}");
        var handler = (IRequestHandler<TRequest, TResponse>)h;
        Func<Task<TResponse>> next = () => handler.HandleAsync(request, ct);
        for (var i = behaviors.Count - 1; i >= 0; i--)
        {
            var behavior = behaviors[i];
            var inner = next;
            next = () => behavior.HandleAsync<TRequest, TResponse>(request, inner, ct);
        }
        return next();
    }
}

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

/// <summary>Refuses a request whose <see cref="IValidatable.Validate"/> names problems.</summary>
public sealed class ValidationBehavior : IPipelineBehavior
{
    public Task<TResponse> HandleAsync<TRequest, TResponse>(TRequest request, Func<Task<TResponse>> next, CancellationToken ct)
        where TRequest : IRequest<TResponse>
    {
        if (request is IValidatable v)
        {
            var problems = v.Validate().ToList();
            if (problems.Count > 0) throw new CommandValidationException(problems);
        }
        return next();
    }
}

/// <summary>Logs each request's name, duration and failure to a writer (stderr with --verbose).</summary>
public sealed class LoggingBehavior(TextWriter? log) : IPipelineBehavior
{
    public async Task<TResponse> HandleAsync<TRequest, TResponse>(TRequest request, Func<Task<TResponse>> next, CancellationToken ct)
        where TRequest : IRequest<TResponse>
    {
        if (log is null) return await next();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            var result = await next();
            await log.WriteLineAsync($"[sva] {typeof(TRequest).Name} ok in {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F1} ms");
            return result;
        }
        catch (Exception ex)
        {
            await log.WriteLineAsync($"[sva] {typeof(TRequest).Name} failed after {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:F1} ms: {ex.Message}");
            throw;
        }
    }
}
