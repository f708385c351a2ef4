// The namespaces every part of MartenEventStore uses (its partial files split schema, append, reads, snapshots, time,
// verify, sources, projections and the daemon), said once for the project.
global using System.Collections.Concurrent;
global using System.Linq.Expressions;
global using System.Net.Sockets;
global using System.Runtime.CompilerServices;
global using System.Security.Cryptography;
global using System.Text;
global using System.Text.Json;
global using JasperFx;
global using JasperFx.Events;
global using JasperFx.Events.Daemon;
global using JasperFx.Events.Projections;
global using Marten;
global using Marten.Exceptions;
global using Npgsql;
global using NpgsqlTypes;
global using Weasel.Core;
