namespace Sva.Domain;

/// <summary>The errno values the SVA paths return, by their kernel names (the simulator never needs the numbers).</summary>
public enum Errno
{
    ENODEV,
    EINVAL,
    EBUSY,
    EOVERFLOW,
    ENOSPC,
    ENOMEM,
    EOPNOTSUPP,
    EEXIST,
}

/// <summary>Page-response codes of <c>enum iommu_page_response_code</c>.</summary>
public enum PageResponseCode
{
    SUCCESS = 0,
    INVALID = 1,
    FAILURE = 2,
}
